"""The Prometheus endpoint: its protection, the values a known sequence of prompts moves, and multi-process mode.

The registry is the process's own and other tests move it too, so each test compares a scrape before and after.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

import pytest
from django.test import AsyncClient
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from streaming.deployment.metrics import MULTIPROC_DIR
from tests.conftest import open_socket, prompt
from tests.fake_openai import Script, ToolCallScript
from tests.live import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "metrics-test-token"
URL = "/metrics"
# Every label a metric of ours may have: none of them names a client.
ALLOWED_LABELS = {"model", "status", "code", "kind", "tool", "outcome", "le"}

TIMES = [
    ("streaming_time_to_first_token_seconds", "ttft_ms"),
    ("streaming_time_to_first_output_seconds", "first_output_ms"),
    ("streaming_duration_seconds", "duration_ms"),
]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parsed(body: bytes) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name.startswith("streaming_")
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def scrape() -> Samples:
    response = await AsyncClient().get(URL, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return parsed(response.content)


@pytest.fixture
def metrics_on(settings: Any) -> None:
    settings.STREAMING_METRICS_TOKEN = TOKEN


def test_the_url_is_named_and_at_the_root_of_the_reference_project():
    assert reverse("streaming:metrics") == URL


@pytest.mark.parametrize("method", ["get", "post"])
def test_without_a_token_set_there_is_no_endpoint(client, method):
    assert getattr(client, method)(URL, headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "", f"Bearer {TOKEN}x", f"bearer {TOKEN}", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}"],
)
def test_a_request_without_the_token_is_refused(client, metrics_on, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get(URL, headers=headers)
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"
    assert b"streaming_" not in response.content


def test_the_token_opens_the_text_format(client, metrics_on):
    response = client.get(URL, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {"streaming_prompts", "streaming_streams_running", "streaming_loop_lag_seconds"} <= names
    assert client.post(URL, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 405


async def test_a_known_sequence_of_prompts_moves_each_value_by_what_it_did(upstream, metrics_on, settings):
    settings.STREAMING_TOOL_MODELS = ["*"]
    upstream.then(
        Script(tokens=["The", " sky", " is", " blue", "."]),
        Script(tokens=["Hi", "!"]),
        Script(tool_calls=[ToolCallScript("current_time", {}, id="call_time")]),
        Script(tokens=["It", " is", " noon", "."]),
        Script(status=500),
    )
    before = await scrape()
    socket = await open_socket()
    ends = []
    for n, model in enumerate(["fake-model", "fake-model-large", "fake-model", "fake-model"]):
        await socket.send(prompt(f"Question {n}", request=f"q{n}", model=model))
        ends.append((await socket.stream_to_end())[-1])
    await socket.send({"type": "shout"})
    assert (await socket.receive())["code"] == "bad_request"
    after = await scrape()
    await socket.close()

    assert [end["type"] for end in ends] == ["done", "done", "done", "error"]
    assert ends[3]["code"] == "upstream_unavailable"
    assert moved(before, after, "streaming_prompts_total", model="fake-model") == 3
    assert moved(before, after, "streaming_prompts_total", model="fake-model-large") == 1
    assert moved(before, after, "streaming_streams_running") == 0
    assert moved(before, after, "streaming_streams_ended_total", model="fake-model", status="completed") == 2
    assert moved(before, after, "streaming_streams_ended_total", model="fake-model", status="failed") == 1
    assert moved(before, after, "streaming_streams_ended_total", model="fake-model-large", status="completed") == 1
    assert moved(before, after, "streaming_errors_total", code="upstream_unavailable") == 1
    assert moved(before, after, "streaming_errors_total", code="bad_request") == 1
    assert moved(before, after, "streaming_tool_calls_total", tool="current_time", outcome="done") == 1

    done = {"fake-model": [ends[0], ends[2]], "fake-model-large": [ends[1]]}
    for model, ended in done.items():
        for kind in ("prompt", "completion"):
            used = sum(end["usage"][f"{kind}_tokens"] for end in ended)
            assert used > 0
            assert moved(before, after, "streaming_tokens_total", model=model, kind=kind) == used
        failed = 1 if model == "fake-model" else 0  # the failed stream has a duration, and no first token or output
        for name, field in TIMES:
            count = len(ended) + (failed if field == "duration_ms" else 0)
            assert moved(before, after, f"{name}_count", model=model) == count
            assert moved(before, after, f"{name}_bucket", model=model, le="+Inf") == count
            if field != "duration_ms":  # the error frame does not say its duration
                seconds = sum(end[field] for end in ended) / 1000
                assert moved(before, after, f"{name}_sum", model=model) == pytest.approx(seconds, abs=0.001)
    _no_label_names_a_client(after, socket_clients=[f"session:{key}" for key in await _session_keys()])


async def test_a_running_stream_is_counted_until_it_ends(upstream, metrics_on):
    script = Script(tokens=["one", " two", " three"], pause_after=1)
    upstream.then(script)
    before = await scrape()
    socket = await open_socket()
    await socket.send(prompt())
    await socket.receive_until("delta")  # the model waits after its first token

    assert moved(before, await scrape(), "streaming_streams_running") == 1
    script.proceed.set()
    await socket.stream_to_end()
    assert moved(before, await scrape(), "streaming_streams_running") == 0
    await socket.close()


def test_several_processes_report_as_one_in_multiprocess_mode(client, metrics_on, tmp_path, monkeypatch):
    """Two workers write to the directory; a scrape reads both. One exits cleanly and takes its running streams out
    of the sum; the other dies without a word, and its running stream stays until the directory is emptied (as a
    deployment does at its start)."""
    record = (
        "import os, sys\n"
        "from streaming.deployment import metrics\n"
        "metrics.stream_started('m'); metrics.stream_started('m'); metrics.stream_forgotten()\n"
        "metrics.record_lag(30)\n"
        "if sys.argv[1] == 'dies': os._exit(0)\n"
    )
    env = {**os.environ, MULTIPROC_DIR: str(tmp_path)}
    for how in ("exits", "dies"):
        subprocess.run([sys.executable, "-c", record, how], cwd=ROOT, env=env, check=True, timeout=60)
    monkeypatch.setenv(MULTIPROC_DIR, str(tmp_path))

    response = client.get(URL, headers={"Authorization": f"Bearer {TOKEN}"})

    samples = parsed(response.content)
    assert value(samples, "streaming_prompts_total", model="m") == 4
    assert value(samples, "streaming_streams_running") == 1  # the one that died
    assert value(samples, "streaming_loop_lag_seconds_count") == 2
    assert value(samples, "streaming_loop_lag_seconds_bucket", le="0.05") == 2
    assert value(samples, "streaming_loop_lag_seconds_bucket", le="0.025") == 0


async def _session_keys() -> list[str]:
    from django.contrib.sessions.models import Session

    return [session.session_key async for session in Session.objects.all()]


def _no_label_names_a_client(samples: Samples, *, socket_clients: Iterable[str]) -> None:
    labels = {name for _, pairs in samples for name, _ in pairs}
    assert labels <= ALLOWED_LABELS
    values = {label_value for _, pairs in samples for _, label_value in pairs}
    for client_id in socket_clients:
        assert not any(client_id in label_value or client_id.split(":")[1] in label_value for label_value in values)
