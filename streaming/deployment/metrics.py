"""What this worker reports to Prometheus: the metric objects, the few calls that record them, and the scrape.

Each fact is recorded where it is known, once: a stream's start and end (`stream_started`, `stream_forgotten`,
`record_end`, from `running` and the generation's end), a tool call's outcome, a refused request, the loop's lag.
Nothing is recorded per delta. No label names a client: the labels are models (those `STREAMING_MODELS` offers),
tools (those offered, else `unknown`), error codes and statuses (the app's fixed ones), so their number is bounded.

With several daphne workers on a host, prometheus-client's multi-process mode adds them up: when the environment
variable `PROMETHEUS_MULTIPROC_DIR` names a directory before the process starts, every worker writes its values to
files there, and a scrape that reaches any worker reads them all (`MultiProcessCollector`). Without it, a scrape
reports the process's own registry.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Collection
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from streaming import errors

if TYPE_CHECKING:
    from streaming.relay.ending import Ending
    from streaming.relay.tool_outcome import Outcome

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
UNKNOWN_TOOL = "unknown"  # a name the model made up must not become a label of its own

# Seconds. Time to first token spans a fast model's tenth of a second to a reasoning model's minute.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, float("inf"))
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640, float("inf"))
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, float("inf"))

# Summed over the workers that are alive: a dead worker's streams are no longer running here.
STREAMS_RUNNING = Gauge("streaming_streams_running", "Streams this worker generates now.", multiprocess_mode="livesum")
PROMPTS = Counter("streaming_prompts", "Prompts accepted (a stream was started).", ["model"])
STREAMS_ENDED = Counter("streaming_streams_ended", "Streams that ended here, by how they ended.", ["model", "status"])
ERRORS = Counter(
    "streaming_errors", "Errors, by code: streams that ended in one, and requests refused with one.", ["code"]
)
BUDGET_REFUSALS = Counter("streaming_budget_refusals", "Prompts refused for a client's limit, by its code.", ["code"])
TTFT = Histogram(
    "streaming_time_to_first_token_seconds",
    "From accepting the prompt to the first piece of answer text.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
FIRST_OUTPUT = Histogram(
    "streaming_time_to_first_output_seconds",
    "From accepting the prompt to the first output of any kind (reasoning, a tool call, or text).",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
DURATION = Histogram(
    "streaming_duration_seconds", "From accepting the prompt to the stream's end.", ["model"], buckets=DURATION_BUCKETS
)
TOKENS = Counter(
    "streaming_tokens", "Tokens the model reported using, by kind (prompt, completion).", ["model", "kind"]
)
LOOP_LAG = Histogram(
    "streaming_loop_lag_seconds",
    "How late the worker's event loop runs, measured ten times a second.",
    buckets=LAG_BUCKETS,
)
TAKEOVERS = Counter(
    "streaming_takeovers",
    "Answers that outlived their worker (STREAMING_TAKEOVER), by what became of them here: handed over by this worker "
    "as it drained, taken over from a dead or drained one, or ended interrupted as they could not go on.",
    ["outcome"],
)
TOOL_CALLS = Counter(
    "streaming_tool_calls", "Tool calls, by tool and outcome (done, or the error code).", ["tool", "outcome"]
)


def stream_started(model: str, *, taken_over: bool = False) -> None:
    """A stream runs here now: a prompt's, or one taken over from another worker (not a prompt of its own)."""
    if taken_over:
        TAKEOVERS.labels(outcome="taken_over").inc()
    else:
        PROMPTS.labels(model=model).inc()
    STREAMS_RUNNING.inc()


def record_takeover(outcome: str) -> None:
    """`handed_over` or `interrupted` (see `TAKEOVERS`); `taken_over` is counted by `stream_started`."""
    TAKEOVERS.labels(outcome=outcome).inc()


def stream_forgotten() -> None:
    STREAMS_RUNNING.dec()


def record_end(ending: Ending, *, model: str) -> None:
    """Everything a stream's end tells: how it ended, its times and the tokens it used (see `timing`)."""
    STREAMS_ENDED.labels(model=model, status=str(ending.status)).inc()
    if ending.error is not None:
        ERRORS.labels(code=ending.error.code).inc()
    if ending.ttft_ms is not None:
        TTFT.labels(model=model).observe(ending.ttft_ms / 1000)
    if ending.first_output_ms is not None:
        FIRST_OUTPUT.labels(model=model).observe(ending.first_output_ms / 1000)
    if ending.duration_ms is not None:
        DURATION.labels(model=model).observe(ending.duration_ms / 1000)
    if ending.usage:
        TOKENS.labels(model=model, kind="prompt").inc(ending.usage.get("prompt_tokens") or 0)
        TOKENS.labels(model=model, kind="completion").inc(ending.usage.get("completion_tokens") or 0)


def record_refusal(error: Exception) -> None:
    """A request answered with an error frame (a prompt refused, a bad frame): counted by its code."""
    code = error.code if isinstance(error, errors.StreamingError) else errors.StreamingError.code
    ERRORS.labels(code=code).inc()
    if isinstance(error, errors.OverLimit):
        BUDGET_REFUSALS.labels(code=code).inc()


def record_tool_call(name: str, outcome: Outcome, *, offered: Collection[str]) -> None:
    tool = name if name in offered else UNKNOWN_TOOL
    TOOL_CALLS.labels(tool=tool, outcome=outcome.error_code if outcome.error_code else outcome.status).inc()


def record_lag(lag_ms: float) -> None:
    LOOP_LAG.observe(max(lag_ms, 0) / 1000)


def exposition() -> bytes:
    """The scrape, in Prometheus' text format: every worker of the host in multi-process mode, else this process."""
    if os.environ.get(MULTIPROC_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def _mark_dead() -> None:
    """Take this process's live gauges out of the sum (its counters and histograms stay, as they should)."""
    multiprocess.mark_process_dead(os.getpid())


if os.environ.get(MULTIPROC_DIR):
    atexit.register(_mark_dead)
