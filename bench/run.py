"""The benchmark in one command: the direct floor and the relay, over a matrix of concurrency, layer and workers.

    python -m bench.run                                   # the full matrix (under 15 minutes on 2 cores)
    python -m bench.run --concurrency 5 --seconds 2 --layers memory --workers 1
    python -m bench.run --reasoning 100 --tokens 200      # every answer thinks first: 100 reasoning tokens
    python -m bench.run --burst --concurrency 400,800 --layers redis --workers 1   # C prompts within one second

For each concurrency C (1, 50, 200, 400, 800 by default), C clients each ask for one answer of `--tokens` tokens at
`--rate` tokens/s, after `--reasoning` tokens of reasoning at the same rate (none by default), their prompts spread
evenly over the ramp. The floor (the SDK reading the upstream directly) runs
first at each C; then, for each channel layer and worker count, the relay runs at each C until one fails: a client
did not get its whole answer exactly once and in order, or the p99 latency passed `--fail-p99-ms` (the relay is
then overloaded, and a higher C would only take longer to say so); then it bisects for the largest C whose p99
stays within `--sustain-p99-ms`. Each configuration then runs a full-speed
round (rate 0) that measures how many upstream tokens/s one worker relays, and, with one worker, measures what an
idle socket costs. A Markdown report goes to stdout, everything measured to `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.util
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import load, report, stack
from bench.procstat import Monitor

SATURATED = 0.85  # share of a core above which a process counts as out of CPU
DISTURBED = 0.25  # cores used by processes outside the benchmark above which a run is repeated


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=_ints, default=[1, 50, 200, 400, 800], help="e.g. 1,50,200")
    parser.add_argument("--layers", type=_names({"memory", "redis"}), default=["memory", "redis"])
    parser.add_argument("--workers", type=_ints, default=[1, 2], help="daphne workers, e.g. 1,2")
    parser.add_argument("--rate", type=float, default=50, help="tokens per second per answer")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per answer")
    parser.add_argument("--reasoning", type=int, default=0, help="reasoning tokens before each answer's text")
    parser.add_argument("--seconds", type=float, help="answer length in seconds (sets --tokens to rate x seconds)")
    parser.add_argument("--ramp", type=float, help="seconds over which prompts are spread (default: half an answer)")
    parser.add_argument("--api", choices=["chat", "responses"], default="chat", help="the API the relay asks through")
    parser.add_argument(
        "--takeover", action="store_true", help="STREAMING_TAKEOVER on (needs --api responses and the redis layer)"
    )
    parser.add_argument("--burst", action="store_true", help="every prompt within one second (the same as --ramp 1)")
    parser.add_argument("--grace", type=float, default=30, help="seconds past the expected end before a run fails")
    parser.add_argument("--fail-p99-ms", type=float, default=1000, help="p99 latency that ends the C sweep")
    parser.add_argument("--sustain-p99-ms", type=float, default=100, help="p99 latency a sustained C must meet")
    parser.add_argument("--load-procs", type=int, default=0, help="load generator processes (0: 1 below C=50, else 2)")
    parser.add_argument("--full-streams", type=int, default=8, help="streams per worker in the full-speed round")
    parser.add_argument("--full-tokens", type=int, default=20000, help="tokens per answer in the full-speed round")
    parser.add_argument("--no-full-speed", action="store_true", help="skip the full-speed round")
    parser.add_argument("--retries", type=int, default=1, help="repeats of a run disturbed by other processes")
    parser.add_argument("--search", type=int, default=3, help="bisection steps for the largest sustained C (0: none)")
    parser.add_argument("--no-floor", action="store_true", help="skip the direct floor")
    parser.add_argument(
        "--floor-runs", type=int, default=1, help="direct runs at each C; the one of median TTFD p50 is the floor"
    )
    parser.add_argument(
        "--floor",
        choices=["lines", "typed"],
        default="lines",
        help="how the floor reads the SDK's stream: SSE lines as the app does, or the SDK's typed chunks",
    )
    parser.add_argument("--idle-sockets", type=int, default=2000, help="idle sockets to open (0: skip)")
    parser.add_argument("--idle-seconds", type=float, default=4, help="how long the idle sockets idle")
    parser.add_argument("--database", choices=["auto", "postgres", "sqlite"], default="auto")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"), help="where to write the results")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs (printed at the end)")
    options = parser.parse_args(argv)
    if options.seconds is not None:
        options.tokens = max(1, round(options.rate * options.seconds))
    if options.burst:
        options.ramp = 1.0
    if options.ramp is None:
        options.ramp = min(2.0, options.tokens / options.rate / 2) if options.rate else 0.5
    return options


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _names(allowed: set[str]):
    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        if not set(names) <= allowed:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(sorted(allowed))}")
        return names

    return parse


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # thousands of sockets, inherited by the children
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    started = time.monotonic()
    results: dict[str, Any] = {"meta": describe_machine(options), "floor": [], "runs": [], "full_speed": [], "idle": []}
    upstream = stack.Upstream(workdir)
    bench = Bench(options, upstream, workdir, results)
    try:
        if not options.no_floor:
            bench.floors()
        for layer in options.layers:
            for workers in options.workers:
                bench.configuration(layer, workers)
    finally:
        upstream.stop()
        bench.drop_databases()
        results["meta"]["seconds"] = round(time.monotonic() - started, 1)
        options.json.write_text(json.dumps(results, indent=2))
    print(report.markdown(results))
    print(f"\nResults: {options.json} ({results['meta']['seconds']} s)")
    if options.keep_logs:
        print(f"Logs: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all_passed(results) else 1


def all_passed(results: dict[str, Any]) -> bool:
    """The command fails when any run lost, duplicated, reordered or garbled anything, or when a client got no whole
    answer below the overload threshold. Overload itself (where a sweep stops, and answers may time out) is a
    result, not a failure."""
    runs = results["floor"] + results["runs"] + results["full_speed"]
    garbled = any(run[key] for run in runs for key in load.PROBLEMS)
    return not garbled and all(run["correct"] or run["overloaded"] for run in runs)


class Bench:
    def __init__(self, options: argparse.Namespace, upstream: stack.Upstream, workdir: Path, out: dict) -> None:
        self.options, self.upstream, self.workdir, self.out = options, upstream, workdir, out
        self.redis_pid = stack.flush_redis() if "redis" in options.layers else None
        self.databases: list[stack.Database] = []

    def database(self, index: int) -> stack.Database:
        """The index-th database, created and migrated on first use, emptied on every later one."""
        if index < len(self.databases):
            stack.empty(self.databases[index])
        else:
            self.databases.append(stack.make_database(self.options.database, self.workdir, index))
            stack.prepare(self.databases[index])
            self.out.setdefault("meta", {})["database"] = self.databases[index].kind
        return self.databases[index]

    def drop_databases(self) -> None:
        for database in self.databases:
            database.drop()

    def envs(self, layer: str, workers: int) -> list[dict[str, str]]:
        """Each worker's environment: Redis workers share one database; in-memory workers, which share nothing,
        are deployments of their own (sharing a database, each would take the other's streams for a dead
        worker's and log them as interrupted)."""
        databases = [self.database(n) for n in range(workers if layer == "memory" else 1)]
        url = self.upstream.base_url
        return [
            stack.app_env(
                database=databases[n % len(databases)],
                upstream_url=url,
                layer=layer,
                api=self.options.api,
                takeover=self.options.takeover,
            )
            for n in range(workers)
        ]

    def plan(self, mode: str, targets: list[str], clients: int, **overrides: Any) -> load.Plan:
        procs = self.options.load_procs or (1 if clients < 50 else 2)
        fields = {"rate": self.options.rate, "tokens": self.options.tokens, "reasoning": self.options.reasoning}
        fields["ramp"] = self.options.ramp
        fields |= {"grace": self.options.grace, "procs": procs, "floor": self.options.floor}
        return load.Plan(mode=mode, targets=targets, clients=clients, **fields | overrides)

    def floors(self) -> None:
        """The SDK straight from the upstream at each C, until the generator itself cannot keep up.

        With `--floor-runs` N, the run of median TTFD p50 among N: in a burst at C = 800 one run's floor can be ten
        times the next one's (24 to 440 ms within an hour), and the relay's figures are read against it.
        """
        for clients in self.options.concurrency:
            plan = self.plan("direct", [self.upstream.base_url], clients)
            runs = [
                self.quietest(lambda plan=plan: self.measure(plan, server_pids=[]))
                for _ in range(max(1, self.options.floor_runs))
            ]
            run = _median_floor(runs)
            self.out["floor"].append(run)
            _progress("floor", run)
            if run["overloaded"] or not run["correct"]:
                break

    def configuration(self, layer: str, workers: int) -> None:
        label = f"{layer}-{workers}w"
        if layer == "redis" and stack.flush_redis() is None:
            print(f"# {label}: no Redis at {stack.REDIS_URL}, skipped", file=sys.stderr)
            return
        envs = self.envs(layer, workers)
        if workers == 1 and self.options.idle_sockets:
            self.idle(envs, label, {"layer": layer, "workers": workers})
        config = Configuration(self, layer, envs)
        try:
            self.sweep(config)
            if self.options.search:
                self.search(config)
            if not self.options.no_full_speed:
                self.full_speed(config)
        finally:
            config.stop()

    def idle(self, envs: list[dict[str, str]], label: str, tags: dict[str, Any]) -> None:
        """Idle sockets on a worker of their own, so the memory they leave behind does not count in later runs."""
        servers = self.start_workers(envs, label + "-idle", warm_up=False)  # its own warm-up: the first sockets
        try:
            count, seconds = self.options.idle_sockets, self.options.idle_seconds
            idle = asyncio.run(load.measure_idle(servers.ws_urls, count, servers.pids, idle_seconds=seconds))
        finally:
            servers.stop()
        self.out["idle"].append({**tags, **idle})
        print(f"# {label} idle: {idle}", file=sys.stderr, flush=True)

    def start_workers(self, envs: list[dict[str, str]], label: str, *, warm_up: bool = True) -> stack.Workers:
        """Workers past their first answers: the first prompt of a process imports and builds the SDK's client and
        types, opens database and Redis connections; a run should measure none of that."""
        servers = stack.Workers(envs, self.workdir, label)
        if not warm_up:
            return servers
        plan = self.plan("relay", servers.ws_urls, 2 * len(envs), rate=0, tokens=20, ramp=0)
        plan.procs = 1
        t0, results = load.go(load.start(plan))
        if not load.passed(load.summarize(plan, t0, results)):
            servers.stop()
            raise RuntimeError(f"{label}: the warm-up answers failed; see the logs in {self.workdir}")
        return servers

    def sweep(self, config: Configuration) -> None:
        """Relay runs at each C of the matrix until one fails (incomplete, wrong, or overloaded)."""
        for clients in self.options.concurrency:
            run = config.relay(clients)
            if run["overloaded"] or not run["correct"]:
                return

    def search(self, config: Configuration) -> None:
        """Bisect between the largest C the sweep sustained and the smallest it did not, for the knee."""
        for _ in range(self.options.search):
            tried = config.tried()
            good = max((c for c, sustained in tried.items() if sustained), default=0)
            bad = min((c for c, sustained in tried.items() if not sustained and c > good), default=None)
            if bad is None or bad - good <= max(2, good // 10):
                return
            config.relay((good + bad) // 2, search=True)

    def full_speed(self, config: Configuration) -> None:
        workers = len(config.envs)
        plan = self.plan("relay", [], self.options.full_streams * workers, rate=0, tokens=self.options.full_tokens)
        plan.ramp, plan.procs = 0, 1
        run = config.run(plan)
        run["tokens_per_s_per_worker"] = round(run["tokens_per_s"] / workers, 1)
        self.out["full_speed"].append(run)
        _progress(f"{config.label} full speed", run)

    def quietest(self, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Measure, and measure again while processes outside the benchmark took CPU during the run (this machine
        is shared, and two cores leave no room); keep the least disturbed run."""
        runs = [measure()]
        while runs[-1]["background_cores"] >= DISTURBED and len(runs) <= self.options.retries:
            print(f"#   {runs[-1]['background_cores']} cores used by other processes: again", file=sys.stderr)
            runs.append(measure())
        best = min(runs, key=lambda r: r["background_cores"])
        best["attempts"] = len(runs)
        return best

    def measure(self, plan: load.Plan, *, server_pids: list[int]) -> dict[str, Any]:
        """One load run, with the CPU and memory every process spent while the answers streamed."""
        started = load.start(plan)
        groups = {"server": server_pids, "upstream": [self.upstream.popen.pid], "load": started.pids}
        groups["database"] = [pid for database in self.databases for pid in database.backend_pids()]
        if self.redis_pid:
            groups["redis"] = [self.redis_pid]
        before = self.upstream.stats()
        with Monitor(groups) as monitor:
            t0, results = load.go(started)
        after = self.upstream.stats()
        summary = load.summarize(plan, t0, results)
        start, end = summary["window_start"], summary["window_end"]
        cpu = {name: round(monitor.cpu_between(name, start, end), 3) for name in groups}
        cpu["load"] = summary["load_cpu_s"]  # each generator process's own count, to the moment it finished
        machine = monitor.machine_between(start, end)
        cpu["irq"], cpu["steal"] = round(machine["irq"], 3), round(machine["steal"], 3)
        cpu["other"] = round(max(0.0, machine["tasks"] - sum(cpu[name] for name in groups)), 3)
        cpu["machine"] = round(sum(machine.values()), 3)
        run = {"mode": plan.mode, "C": plan.clients, "rate": plan.rate, "tokens_per_answer": plan.tokens}
        run = {**run, "reasoning_per_answer": plan.reasoning, **summary}
        run["cpu_s"] = cpu
        run["background_cores"] = round((cpu["other"] + cpu["steal"]) / (summary["seconds"] or 1), 2)
        mean_cores = cpu["server"] / (summary["seconds"] or 1)
        peak_cores = max(monitor.peak_cores("server", start, end), mean_cores)  # a run shorter than 1 s has no peak
        run["server_peak_cores"] = round(peak_cores, 2) if server_pids else None
        run["server_cpu_s_per_1k_deltas"] = _per_thousand(cpu["server"], summary["deltas"])
        run["server_cpu_s_per_1k_frames"] = _per_thousand(cpu["server"], summary["frames"])
        run["server_cpu_s_per_1k_tokens"] = _per_thousand(cpu["server"], summary["output_tokens"])
        run["server_rss_peak_mb"] = round(monitor.peak_rss("server", start, end) / 2**20, 1) if server_pids else None
        run["upstream"] = _upstream_delta(before, after)
        run["limits"] = limits(run, len(server_pids), len(results))
        run["correct"] = load.passed(summary)
        p99 = summary["latency_ms"]["p99"]
        run["overloaded"] = p99 is None or p99 > self.options.fail_p99_ms
        run["sustained"] = run["correct"] and p99 is not None and p99 <= self.options.sustain_p99_ms
        return run


class Configuration:
    """One layer and worker count: its workers, restarted whenever a run leaves streams behind."""

    def __init__(self, bench: Bench, layer: str, envs: list[dict[str, str]]) -> None:
        self.bench, self.layer, self.envs = bench, layer, envs
        self.label = f"{layer}-{len(envs)}w"
        self.servers: stack.Workers | None = None
        self.restarts = 0

    def relay(self, clients: int, *, search: bool = False) -> dict[str, Any]:
        run = self.run(self.bench.plan("relay", [], clients))
        run["search"] = search
        self.bench.out["runs"].append(run)
        _progress(self.label + (" search" if search else ""), run)
        return run

    def run(self, plan: load.Plan) -> dict[str, Any]:
        return self.bench.quietest(lambda: self.measure(plan))

    def measure(self, plan: load.Plan) -> dict[str, Any]:
        if self.servers is None:
            self.restarts += 1
            self.servers = self.bench.start_workers(self.envs, f"{self.label}-{self.restarts}")
        plan.targets = self.servers.ws_urls
        tags = {"layer": self.layer, "workers": len(self.envs)}
        run = {**tags, **self.bench.measure(plan, server_pids=self.servers.pids)}
        if run["completed"] < run["clients"]:
            self.stop()  # its streams are still running: the next run gets fresh workers
        return run

    def tried(self) -> dict[int, bool]:
        mine = [r for r in self.bench.out["runs"] if (r["layer"], r["workers"]) == (self.layer, len(self.envs))]
        return {r["C"]: r["sustained"] for r in mine}

    def stop(self) -> None:
        if self.servers is not None:
            self.servers.stop()
            self.servers = None


def limits(run: dict[str, Any], server_procs: int, load_procs: int) -> list[str]:
    """Which processes were out of CPU during the run: what limited it, if anything did."""
    seconds, cpu, found = run["seconds"] or 1, run["cpu_s"], []
    if server_procs and (run["server_peak_cores"] or 0) / server_procs >= SATURATED:
        found.append("server CPU")
    if cpu["load"] / seconds / load_procs >= SATURATED:
        found.append("load generator CPU")
    if cpu["upstream"] / seconds >= SATURATED or run["upstream"]["late_20ms_share"] > 0.05:
        found.append("upstream CPU or late")
    if run["background_cores"] >= DISTURBED:
        found.append(f"background load {run['background_cores']:.1f} cores")
    if cpu["machine"] / seconds >= SATURATED * (os.cpu_count() or 2):
        users = sorted(((v, k) for k, v in cpu.items() if k != "machine"), reverse=True)[:3]
        found.append("all cores busy (" + ", ".join(f"{k} {v / seconds:.1f}" for v, k in users if v) + ")")
    return found


def _median_floor(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median TTFD p50 (the lower middle one of an even count), with every run's p50 beside it."""
    ordered = sorted(runs, key=lambda run: run["ttfd_ms"]["p50"] if run["ttfd_ms"]["p50"] is not None else math.inf)
    median = ordered[(len(ordered) - 1) // 2]
    median["ttfd_p50_of_runs"] = [run["ttfd_ms"]["p50"] for run in runs]
    return median


def _per_thousand(cpu: float, count: int) -> float | None:
    return round(cpu / count * 1000, 4) if count else None


def _upstream_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    writes = after["writes"] - before["writes"]
    late = {k: after["late_ms"][k] - before["late_ms"][k] for k in after["late_ms"]}
    return {
        "tokens": after["tokens"] - before["tokens"],
        "writes": writes,
        "late_20ms_share": round(late["20"] / writes, 4) if writes else 0.0,
        "late_100ms_share": round(late["100"] / writes, 4) if writes else 0.0,
    }


def _progress(label: str, run: dict[str, Any]) -> None:
    latency, ttfd = run["latency_ms"], run["ttfd_ms"]
    reasoning = ""
    if run.get("reasoning_per_answer"):
        places = f"{run['pos_lost']} / {run['pos_duplicates']} / {run['pos_reordered']}"
        reasoning = f" {run['reasoning_frames']} reasoning frames, pos lost/dup/reord {places};"
        reasoning += f" ttfo p50 {run['ttfo_ms']['p50']} ms;"
    print(
        f"# {label} C={run['C']}: {run['completed']}/{run['clients']} done, lost {run['lost']} dup {run['duplicates']}"
        f" reord {run['reordered']} bad {run['bad_text']};{reasoning} latency p50 {latency['p50']} p99 {latency['p99']}"
        f" ms; ttfd p50 {ttfd['p50']} ms; {run['tokens_per_s']} tok/s, {run['deltas_per_s']} deltas/s;"
        f" cpu {run['cpu_s']}; limits {run['limits']}",
        file=sys.stderr,
        flush=True,
    )


def describe_machine(options: argparse.Namespace) -> dict[str, Any]:
    from importlib.metadata import version

    packages = ["Django", "channels", "channels-redis", "daphne", "autobahn", "Twisted", "openai", "httpx2", "redis"]
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=stack.ROOT)
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit.stdout.strip() or None,
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "uvloop_in_load_and_upstream": importlib.util.find_spec("uvloop") is not None,
        "packages": {name: version(name) for name in packages},
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(options).items()},
    }


if __name__ == "__main__":
    sys.exit(main())
