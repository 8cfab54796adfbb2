"""Where a daphne worker's CPU goes under load: py-spy samples the worker while the bench load runs, and the samples
are summed into the shares docs/performance.md quotes.

    python -m bench.profile --layers redis --concurrency 50            # 50 streams at 50 tokens/s
    python -m bench.profile --layers memory --concurrency 8 --rate 0   # full speed

Three views of the same samples (each a share of the samples in which the worker was on CPU):
- by activity: inclusive shares of the app's own steps (reading the upstream, keeping a delta for replay, sending
  it through the channel layer, the consumer's send, Twisted's socket writes...), found by a function on the stack;
- by library: the innermost frame's package, i.e. whose code was actually running;
- the functions with the most samples of their own.
Needs py-spy (`pip install py-spy`), and permission to ptrace the worker (root, or CAP_SYS_PTRACE).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench import load, run, stack

# Inclusive activities: a sample counts for an activity when one of its functions is on the stack (matched by
# qualified name, or by its last dotted parts), and none of its `but not` functions is.
ACTIVITIES: dict[str, tuple[list[str], list[str]]] = {
    "ask and read the upstream (request, connections, SSE lines, orjson)": (["_read_pieces"], []),
    "send a delta (Generation._send_delta)": (["Generation._send_delta"], []),
    "  keep it for replay (in memory)": (["MemoryState.keep"], []),
    "  encode the frame and the layer's message": (["frame_event", "delta_frame", "serialize"], []),
    "  channel layer group_send (in memory)": (["group_send"], []),
    "Redis pipelines: keep for replay and publish, all streams": (["PipelineBatcher._send"], []),
    "channel layer: deliver to consumers (receive loop)": (
        ["await_many_dispatch", "dispatch_each.<locals>.read", "RedisSingleShardConnection._do_receiving"],
        ["AsyncConsumer.dispatch", "ChatConsumer.dispatch"],
    ),
    "channels: aclose_old_connections before every message (a hop to the DB thread)": (["aclose_old_connections"], []),
    "consumer: stream_frame, incl. the socket send": (["ChatConsumer.stream_frame"], []),
    "  daphne/autobahn: frame and write": (["WebSocketProtocol.handle_reply"], []),
    "twisted reactor: socket reads and writes": (["AsyncioSelectorReactor._readOrWrite"], []),
    "new sockets (connect, ready)": (["ChatConsumer.connect"], []),
    "prompts and saves (database, in the thread pool)": (["exchanges_start", "exchanges_finish"], []),
    "worker duties (heartbeat, sweep)": (["Worker._beat", "Worker._sweep"], []),
    "stream watchdog (presence check)": (["Generation._stop_when_nobody_watches"], []),
}
# Innermost frames that are a thread waiting, not working: py-spy does not always see that the thread is idle.
WAITS = ("concurrent/futures/thread.py:81)", "threading.py:327)", "threading.py:331)", "selectors.py:468)")
LIBRARIES = [
    "openai",
    "httpx2",
    "httpcore2",
    "h11",
    "anyio",
    "aiohttp",
    "psycopg",
    "channels_redis",
    "channels",
    "redis",
    "msgpack",
    "autobahn",
    "twisted",
    "daphne",
    "asgiref",
    "django",
    "asyncio",
    "json",
    "streaming",
    "logging",
    "selectors",
]


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="redis", choices=["memory", "redis"])
    parser.add_argument("--workers", type=int, default=1, help="workers to start (the first one is profiled)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--tokens", type=int, default=400)
    parser.add_argument("--reasoning", type=int, default=0, help="reasoning tokens before each answer's text")
    parser.add_argument("--ramp", type=float, help="seconds over which prompts are spread (default: bench.run's)")
    parser.add_argument("--gil", action="store_true", help="sample only the thread holding the GIL (py-spy --gil)")
    parser.add_argument(
        "--window", type=float, help="seconds to sample from the first prompt (default: the whole run); 2 for a burst"
    )
    parser.add_argument("--sample-rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "bench-profile", help="raw samples")
    parser.add_argument("--database", choices=["auto", "postgres", "sqlite"], default="auto")
    options = parser.parse_args(argv)
    bench_options = run.parse_options(
        [
            f"--rate={options.rate}",
            f"--tokens={options.tokens}",
            f"--reasoning={options.reasoning}",
            f"--layers={options.layers}",
            f"--database={options.database}",
            *([f"--ramp={options.ramp}"] if options.ramp is not None else []),
        ]
    )
    return options, bench_options


def main(argv: list[str] | None = None) -> int:
    options, bench_options = parse(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    options.out.mkdir(parents=True, exist_ok=True)
    upstream = stack.Upstream(workdir)
    bench = run.Bench(bench_options, upstream, workdir, {})
    try:
        if options.layers == "redis":
            stack.flush_redis()
        servers = bench.start_workers(bench.envs(options.layers, options.workers), "profile")
        try:
            name = f"{options.layers}-{options.workers}w-c{options.concurrency}-r{options.rate:g}"
            folded = options.out / f"{name}.folded"
            summary = profile(bench, servers, options, spy, folded)
        finally:
            servers.stop()
    finally:
        upstream.stop()
        bench.drop_databases()
        shutil.rmtree(workdir, ignore_errors=True)
    print(summary)
    return 0


def profile(bench: run.Bench, servers: stack.Workers, options: argparse.Namespace, spy: str, folded: Path) -> str:
    """Run the load once while py-spy samples the worker for the whole streaming window."""
    plan = bench.plan("relay", servers.ws_urls, options.concurrency)
    if not options.rate:
        plan.ramp, plan.procs = 0, 1
    seconds = plan.ramp + (plan.answer_seconds or 3) + 2  # and the ends, saved after the last token
    if options.window:
        seconds = options.window + 0.3  # the lead below
    started = load.start(plan)
    sampling = ["-r", str(options.sample_rate), "-d", f"{seconds:.0f}", "-f", "raw", "-o", str(folded)]
    sampling += ["--gil"] if options.gil else []
    recorder = subprocess.Popen(
        [spy, "record", "-p", str(servers.pids[0]), *sampling],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    t0, results = load.go(started, lead=0.3)
    recorder.wait(timeout=seconds + 30)
    result = load.summarize(plan, t0, results)
    head = (
        f"Profile of one of {options.workers} daphne workers, {options.layers} layer, C={options.concurrency}"
        f" at {options.rate:g} tokens/s (0: full speed):"
        f" {result['tokens_per_s']:,.0f} tokens/s, {result['deltas_per_s']:,.0f} deltas/s,"
        f" latency p50 {result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms. Samples: {folded}"
    )
    return head + "\n\n" + summarize_folded(folded.read_text())


def summarize_folded(text: str) -> str:
    """The three views of py-spy's raw (folded) output: `frame;frame;frame count` per line, outermost first."""
    stacks, waiting = [], 0
    for line in text.splitlines():
        trace, _, count = line.rpartition(" ")
        if not trace:
            continue
        if trace.endswith(WAITS):
            waiting += int(count)
        else:
            stacks.append((trace.split(";"), int(count)))
    total = sum(count for _, count in stacks) or 1
    activity, library, own = Counter(), Counter(), Counter()
    for frames, count in stacks:
        names = {frame.split(" (")[0] for frame in frames}
        for name, (wanted, unwanted) in ACTIVITIES.items():
            if _any_named(names, wanted) and not _any_named(names, unwanted):
                activity[name] += count
        library[_library(frames[-1])] += count
        own[frames[-1].split(" (")[0] + " (" + _short_path(frames[-1]) + ")"] += count
    parts = [f"{total} samples on CPU ({waiting} more of threads waiting in a queue or in epoll, left out)."]
    parts.append(_share_table("activity (inclusive)", [(n, activity[n]) for n in ACTIVITIES], total))
    parts.append(_share_table("library (innermost frame)", library.most_common(14), total))
    parts.append(_share_table("function (own samples)", own.most_common(20), total))
    return "\n\n".join(parts)


def _any_named(names: set[str], wanted: list[str]) -> bool:
    return any(name == w or name.endswith("." + w) for name in names for w in wanted)


def _library(frame: str) -> str:
    path = frame.rpartition("(")[2]
    for name in LIBRARIES:
        if f"/{name}/" in path or path.startswith(f"{name}/") or f"{name}.py" in path:
            return name
    return "other: " + _short_path(frame)


def _short_path(frame: str) -> str:
    path = frame.rpartition("(")[2].rstrip(")")
    return path.split("site-packages/")[-1].split("/lib/python3")[-1]


def _share_table(title: str, rows: list[tuple[str, int]], total: int) -> str:
    lines = [f"| {title} | share |", "|---|---|"]
    lines += [f"| {name} | {count / total * 100:.1f} % |" for name, count in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
