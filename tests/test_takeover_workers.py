"""Answers that outlive their worker, with real daphne processes (`STREAMING_TAKEOVER`): the worker generating an
answer is SIGKILLed, or SIGTERMed past its grace, mid-answer, and a socket on another worker receives the rest of it
exactly. The provider is the fake one of the test process, in background mode, so a response goes on while no worker
is attached to it; the workers share the machine's Redis and one database, as in test_workers.py.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import prompt, texts
from tests.fake_openai import FakeOpenAI, Script
from tests.live import Daphne, close_code, drop_live_database, live_database_url, workers_env
from tests.test_workers import LiveSocket, browser_session, connect, saved_exchange, start_worker

pytestmark = pytest.mark.redis

TOKENS = [f" w{i}" for i in range(40)]
PAUSE = 10  # tokens relayed before the provider pauses, and the worker generating them goes


@pytest.fixture(scope="module")
def takeover_env(redis_url: str, tmp_path_factory: pytest.TempPathFactory, fake_openai_server: FakeOpenAI) -> Iterator:
    workdir = tmp_path_factory.mktemp("takeover")
    database_url = live_database_url(workdir, name="takeover")
    env = workers_env(
        workdir,
        database_url,
        redis_url=redis_url,
        upstream=fake_openai_server.base_url,
        STREAMING_WORKER_TIMEOUT="2",
        STREAMING_TAKEOVER="1",
        OPENAI_API="responses",
    )
    yield env, workdir
    drop_live_database(database_url)


@pytest.fixture
def survivor(takeover_env) -> Iterator[Daphne]:
    worker = start_worker("survivor", takeover_env)
    yield worker
    worker.stop()


@pytest.fixture
def paused(fake_openai_server: FakeOpenAI) -> Script:
    """The provider's next answer, which pauses after `PAUSE` tokens until the test lets it go on."""
    fake_openai_server.reset()
    script = Script(tokens=TOKENS, pause_after=PAUSE)
    fake_openai_server.then(script)
    return script


async def follow_until_paused(socket: LiveSocket, fake: FakeOpenAI) -> list[dict[str, Any]]:
    """The stream's frames on `socket` until the provider has paused and they hold what it wrote."""
    frames = [await socket.receive()]
    while texts(frames) != "".join(TOKENS[:PAUSE]):
        frames.append(await socket.receive())
    await asyncio.wait_for(fake.requests[0].paused.wait(), timeout=5)
    return frames


def assert_whole(frames: list[dict[str, Any]]) -> None:
    """One stream, from `start` to `done`, every frame once and in its place, with exactly the model's text."""
    start, *kept, done = frames
    assert start["type"] == "start" and done["type"] == "done", (start, done)
    assert [frame["pos"] for frame in kept] == list(range(1, len(kept) + 1))
    deltas = [frame for frame in kept if frame["type"] == "delta"]
    assert [delta["seq"] for delta in deltas] == list(range(1, len(deltas) + 1))
    assert texts(deltas) == "".join(TOKENS)
    assert (done["finish_reason"], done["seq"]) == ("stop", len(deltas))


def last_relayed(fake: FakeOpenAI) -> str:
    """The sequence number of the event of the last token before the pause: where the dead worker left off."""
    (response,) = fake.responses.values()
    return str(
        [e for e in response.payloads if e["type"] == "response.output_text.delta"][PAUSE - 1]["sequence_number"]
    )


def retrieves(fake: FakeOpenAI) -> list[dict[str, str]]:
    return [request.query for request in fake.requests if request.method == "GET"]


async def test_a_killed_workers_answer_goes_on_from_another_worker_exactly(
    takeover_env, survivor, paused, fake_openai_server
):
    doomed = start_worker("doomed", takeover_env)
    session = browser_session(survivor)
    on_doomed, on_survivor = await connect(doomed, session), await connect(survivor, session)
    await on_doomed.send(prompt())
    before = await follow_until_paused(on_survivor, fake_openai_server)

    doomed.stop(signal.SIGKILL)
    paused.proceed.set()  # the provider goes on, with no worker attached
    after = await on_survivor.stream_to_end(timeout=20)  # STREAMING_WORKER_TIMEOUT is 2 s for these workers

    assert_whole(before + after)
    assert [query["starting_after"] for query in retrieves(fake_openai_server)] == [last_relayed(fake_openai_server)]
    saved = saved_exchange(survivor, session, before[0]["conversation"])
    assert (saved["status"], saved["answer"]) == ("completed", "".join(TOKENS))
    await on_survivor.close()


async def test_a_worker_drained_past_its_grace_hands_its_answer_over_and_its_sockets_resume_elsewhere(
    takeover_env, paused, fake_openai_server
):
    # A survivor that would take a silent worker for dead only after a minute: the drained one says it is gone.
    survivor = start_worker("patient-survivor", takeover_env, STREAMING_WORKER_TIMEOUT="60")
    draining = start_worker("draining", takeover_env, STREAMING_SHUTDOWN_GRACE="1")
    session = browser_session(survivor)
    on_draining, on_survivor = await connect(draining, session), await connect(survivor, session)
    await on_draining.send(prompt())
    before = await follow_until_paused(on_survivor, fake_openai_server)
    heard = await follow_until_paused(on_draining, fake_openai_server)

    exit_code = await asyncio.to_thread(draining.stop, signal.SIGTERM, 30)
    closed_with = await close_code(on_draining.connection)
    paused.proceed.set()
    after = await on_survivor.stream_to_end(timeout=20)

    assert exit_code == 0, draining.output()
    assert closed_with == 4012  # "restarting": reconnect and resume
    assert_whole(before + after)
    assert fake_openai_server.cancelled == []  # handed over, not stopped
    # The socket the drained worker closed resumes on the survivor from where it was.
    again = await connect(survivor, session)
    await again.send({"type": "resume", "stream": heard[0]["stream"], "pos": heard[-1]["pos"]})
    assert heard + await again.stream_to_end() == before + after
    await again.close()
    await on_survivor.close()
    survivor.stop()


async def test_of_two_survivors_exactly_one_takes_the_answer_over(takeover_env, survivor, paused, fake_openai_server):
    doomed, other = start_worker("doomed-2", takeover_env), start_worker("other-survivor", takeover_env)
    try:
        session = browser_session(survivor)
        browser_session(other)  # its duties, the sweep among them, start with its first request
        on_doomed, on_survivor = await connect(doomed, session), await connect(survivor, session)
        on_other = await connect(other, session)
        await on_doomed.send(prompt())
        before = await follow_until_paused(on_survivor, fake_openai_server)
        heard_on_other = await follow_until_paused(on_other, fake_openai_server)

        doomed.stop(signal.SIGKILL)
        paused.proceed.set()
        after = await on_survivor.stream_to_end(timeout=20)

        assert_whole(before + after)
        assert_whole(heard_on_other + await on_other.stream_to_end(timeout=20))
        assert len(retrieves(fake_openai_server)) == 1  # one worker re-attached
        await on_survivor.close()
        await on_other.close()
    finally:
        other.stop()
