"""The benchmark's results as Markdown: the tables docs/performance.md quotes, and the targets checked.

Latency is per token (receipt minus the upstream's emission stamp), so a delta that carries several tokens counts
each of them, and reasoning tokens count like the answer's; "added" is the relay's figure minus the direct floor's at
the same concurrency. A run whose answers reason first (`--reasoning`) gets a table of its own for what is particular
to them: reasoning frames, `pos` across kinds, and the time to first output next to the time to first delta.
"""

from __future__ import annotations

from typing import Any

TARGET_LAYER = "redis"


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    sections = [
        f"Machine: {meta['cpus']} x {meta['cpu_model']}, Python {meta['python']}, database {meta.get('database')}, "
        f"commit {meta['commit']}, {meta['date']}; load average at start {_loadavg(meta)}.",
        f"Answers: {meta['options']['tokens']} tokens at {meta['options']['rate']:g} tokens/s{_thinking(meta)}, "
        f"prompts spread over {meta['options']['ramp']:g} s, asked through the "
        f"{'Responses API' if meta['options'].get('api') == 'responses' else 'Chat Completions API'}"
        f"{' with STREAMING_TAKEOVER' if meta['options'].get('takeover') else ''}. "
        f"Latency is per token, in ms. {_disturbance(results)}",
        f"### Floor: the openai SDK reading the upstream directly ({meta['options']['floor']})\n\n"
        + floor_table(results),
        "### Relay: WebSocket clients of daphne\n\n" + relay_table(results),
    ]
    if _reasoning(meta):
        sections.append(f"### Reasoning: {_reasoning(meta)} tokens before each answer\n\n" + reasoning_table(results))
    if results["full_speed"]:
        sections.append("### Full speed (rate 0)\n\n" + full_speed_table(results))
    if results["idle"]:
        sections.append("### Idle sockets\n\n" + idle_table(results))
    sections.append("### Targets (one worker, Redis layer, against the floor)\n\n" + targets_table(results))
    return "\n\n".join(sections)


def floor_table(results: dict[str, Any]) -> str:
    rows = [
        [
            run["C"],
            f"{run['completed']}/{run['clients']}",
            _pair(run["latency_ms"]),
            _pair(run["ttfd_ms"]),
            _num(run["tokens_per_s"]),
            _cores(run["cpu_s"]["load"], run),
            ", ".join(run["limits"]) or "-",
        ]
        for run in results["floor"]
    ]
    head = ["C", "done", "latency p50 / p99", "TTFD p50 / p99", "tokens/s", "load gen. cores", "limited by"]
    return _table(head, rows)


def relay_table(results: dict[str, Any]) -> str:
    floors = {run["C"]: run for run in results["floor"] if not run["overloaded"]}
    rows = []
    for run in sorted(results["runs"], key=lambda r: (r["layer"], r["workers"], r["C"])):
        floor = floors.get(run["C"])
        rows.append(
            [
                run["layer"],
                run["workers"],
                f"{run['C']} (search)" if run.get("search") else run["C"],
                f"{run['completed']}/{run['clients']}",
                _order(run) + (" BAD TEXT" if run["bad_text"] else ""),
                run.get("told_busy", 0),
                _pair(run["latency_ms"]),
                _added(run, floor, "latency_ms"),
                _added(run, floor, "ttfd_ms", only="p50"),
                _ms(run["server_ttft_ms"]["p50"]),
                _num(run["tokens_per_s"]),
                _num(run["deltas_per_s"]),
                run["tokens_per_delta"],
                f"{_cores(run['cpu_s']['server'], run)} / {run['server_peak_cores']:.2f}",
                run["server_cpu_s_per_1k_deltas"],
                run["server_rss_peak_mb"],
                ", ".join(run["limits"]) or "-",
            ]
        )
    head = [
        "layer",
        "workers",
        "C",
        "done",
        "lost / dup / reord",
        "told busy",
        "latency p50 / p99",
        "added p50 / p99",
        "TTFD p50 added",
        "server TTFT p50",
        "tokens/s",
        "deltas/s",
        "tokens/delta",
        "server cores mean / peak",
        "server CPU s / 1k deltas",
        "peak RSS MB (all workers)",
        "limited by",
    ]
    return _table(head, rows)


def reasoning_table(results: dict[str, Any]) -> str:
    """The runs of answers that reason first: reasoning frames next to deltas, every kept frame's `pos` checked, and
    the time to first output (the first reasoning frame) next to the time to first delta (after the reasoning)."""
    floors = {run["C"]: run for run in results["floor"] if not run["overloaded"]}
    runs = [("floor", "-", run, None) for run in results["floor"]]
    ordered = sorted(results["runs"], key=lambda r: (r["layer"], r["workers"], r["C"]))
    runs += [(run["layer"], run["workers"], run, floors.get(run["C"])) for run in ordered]
    rows = [
        [
            layer,
            workers,
            f"{run['C']} (search)" if run.get("search") else run["C"],
            f"{run['completed']}/{run['clients']}",
            f"{run['pos_lost']} / {run['pos_duplicates']} / {run['pos_reordered']}",
            _num(run["reasoning_frames"] / (run["seconds"] or 1)),
            _num(run["deltas_per_s"]),
            run["tokens_per_frame"],
            _pair(run["ttfo_ms"]),
            _added(run, floor, "ttfo_ms", only="p50"),
            _ms(run["ttfd_ms"]["p50"]),
            f"{_ms(run['server_first_output_ms']['p50'])} / {_ms(run['server_ttft_ms']['p50'])}",
            run["server_cpu_s_per_1k_frames"] if run["mode"] == "relay" else None,
        ]
        for layer, workers, run, floor in runs
    ]
    head = [
        "layer",
        "workers",
        "C",
        "done",
        "pos lost / dup / reord",
        "reasoning frames/s",
        "deltas/s",
        "tokens/frame",
        "TTFO p50 / p99",
        "TTFO p50 added",
        "TTFD p50",
        "server first output / TTFT p50",
        "server CPU s / 1k frames",
    ]
    return _table(head, rows)


def full_speed_table(results: dict[str, Any]) -> str:
    rows = [
        [
            run["layer"],
            run["workers"],
            f"{run['C']} x {run['tokens_per_answer']}",
            f"{run['completed']}/{run['clients']}",
            _order(run),
            _num(run["tokens_per_s"]),
            _num(run["tokens_per_s_per_worker"]),
            _num(run["deltas_per_s"]),
            run["tokens_per_delta"],
            _cores(run["cpu_s"]["server"], run),
            run["server_cpu_s_per_1k_tokens"],
            ", ".join(run["limits"]) or "-",
        ]
        for run in results["full_speed"]
    ]
    head = [
        "layer",
        "workers",
        "streams x tokens",
        "done",
        "lost / dup / reord",
        "upstream tokens/s",
        "per worker",
        "deltas/s sent",
        "tokens/delta",
        "server cores",
        "server CPU s / 1k tokens",
        "limited by",
    ]
    return _table(head, rows)


def idle_table(results: dict[str, Any]) -> str:
    rows = [
        [
            run["layer"],
            run["sockets"],
            run["kb_per_socket"],
            f"{run['rss_before_mb']} → {run['rss_after_mb']}",
            _num(run["connects_per_s"]),
            f"{run['idle_cpu_share'] * 100:.1f} %",
        ]
        for run in results["idle"]
    ]
    head = ["layer", "sockets", "KB per socket", "worker RSS MB", "connects/s", "worker CPU while idle"]
    return _table(head, rows)


def targets_table(results: dict[str, Any]) -> str:
    rows = [[name, measured, _met(ok)] for name, measured, ok in targets(results)]
    return _table(["target", "measured", "met"], rows)


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """Each target of the issue with what this run measured against it; `None` where it was not measured."""
    one = [r for r in results["runs"] if r["layer"] == TARGET_LAYER and r["workers"] == 1]
    two = [r for r in results["runs"] if r["layer"] == TARGET_LAYER and r["workers"] == 2]
    floors = {run["C"]: run for run in results["floor"] if not run["overloaded"]}
    rows: list[tuple[str, str, bool | None]] = []
    errors = sum(r["lost"] + r["duplicates"] + r["reordered"] + r["bad_text"] for r in one)
    clean = (not errors) if one else None
    rows.append(("0 lost / duplicated / reordered, every C", f"{errors} in {len(one)} runs", clean))
    at50, floor50 = next((r for r in one if r["C"] == 50), None), floors.get(50)
    if at50 and floor50:
        p50 = at50["latency_ms"]["p50"] - floor50["latency_ms"]["p50"]
        p99 = at50["latency_ms"]["p99"] - floor50["latency_ms"]["p99"]
        ttfd = at50["ttfd_ms"]["p50"] - floor50["ttfd_ms"]["p50"]
        rows.append(("added latency at C=50: p50 ≤ 1 ms", f"{p50:+.2f} ms", p50 <= 1))
        rows.append(("added latency at C=50: p99 ≤ 5 ms", f"{p99:+.2f} ms", p99 <= 5))
        rows.append(("time to first delta ≤ 5 ms over the floor (C=50, p50)", f"{ttfd:+.2f} ms", ttfd <= 5))
    else:
        rows.append(("added latency and TTFD at C=50", "not measured", None))
    rows += _burst_targets(results, one, floors)
    best_one, best_two = _best_sustained(one), _best_sustained(two)
    rows.append(("≥ 400 streams per worker at p99 ≤ 100 ms", f"{best_one} sustained (of those tried)", best_one >= 400))
    if two:
        ratio = best_two / best_one if best_one else 0
        rows.append(("two workers ≥ 1.8 x one (streams)", f"{best_two} vs {best_one}: {ratio:.2f}x", ratio >= 1.8))
    full = {r["workers"]: r for r in results["full_speed"] if r["layer"] == TARGET_LAYER}
    if 1 in full:
        per_worker = full[1]["tokens_per_s_per_worker"]
        rows.append(("≥ 20k upstream deltas/s per worker (full speed)", f"{per_worker:,.0f}/s", per_worker >= 20_000))
    if 1 in full and 2 in full:
        ratio = full[2]["tokens_per_s"] / full[1]["tokens_per_s"]
        rows.append(("two workers ≥ 1.8 x one (full speed)", f"{ratio:.2f}x", ratio >= 1.8))
    idle = next((r for r in results["idle"] if r["layer"] == TARGET_LAYER), None)
    if idle:
        kb = idle["kb_per_socket"]
        rows.append(("idle socket ≤ 50 KB", f"{kb} KB", kb <= 50))
        rows.append(("idle socket ≤ 25 KB (first words under a burst, best effort)", f"{kb} KB", kb <= 25))
    return rows


# The first words under a burst (`--burst`): time to first delta over the floor's at the same C, in ms.
BURST_TARGETS = [(400, "p50", 70), (400, "p99", 300), (800, "p50", 200)]


def _burst_targets(
    results: dict[str, Any], one: list[dict[str, Any]], floors: dict[int, dict[str, Any]]
) -> list[tuple[str, str, bool | None]]:
    if results["meta"]["options"]["ramp"] > 1:
        return []
    rows: list[tuple[str, str, bool | None]] = []
    for clients, quantile, bound in BURST_TARGETS:
        run, floor = next((r for r in one if r["C"] == clients), None), floors.get(clients)
        name = f"burst: time to first delta at C={clients} ≤ {bound} ms over the floor ({quantile})"
        if run is None or floor is None:
            rows.append((name, "not measured", None))
            continue
        added = run["ttfd_ms"][quantile] - floor["ttfd_ms"][quantile]
        rows.append((name, f"{added:+,.0f} ms", added <= bound))
    return rows


def _best_sustained(runs: list[dict[str, Any]]) -> int:
    return max((r["C"] for r in runs if r["sustained"]), default=0)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join("-" if cell is None else str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _order(run: dict[str, Any]) -> str:
    """Lost, duplicated and reordered deltas by `seq`; and by `pos` (frames of every kind) when any was."""
    text = f"{run['lost']} / {run['duplicates']} / {run['reordered']}"
    places = [run.get(key, 0) for key in ("pos_lost", "pos_duplicates", "pos_reordered")]
    return text + (" (pos {} / {} / {})".format(*places) if any(places) else "")


def _reasoning(meta: dict[str, Any]) -> int:
    return meta["options"].get("reasoning", 0)


def _thinking(meta: dict[str, Any]) -> str:
    return f", each after {_reasoning(meta)} reasoning tokens at that rate" if _reasoning(meta) else ""


def _pair(quantiles: dict[str, float | None]) -> str:
    return f"{_ms(quantiles['p50'])} / {_ms(quantiles['p99'])}"


def _added(run: dict[str, Any], floor: dict[str, Any] | None, key: str, only: str | None = None) -> str:
    if floor is None:
        return "-"
    names = [only] if only else ["p50", "p99"]
    values = [run[key][n] - floor[key][n] if run[key][n] is not None else None for n in names]
    return " / ".join("-" if v is None else f"{v:+.2f}" for v in values)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:,.0f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _cores(cpu: float, run: dict[str, Any]) -> str:
    return f"{cpu / (run['seconds'] or 1):.2f}"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def _disturbance(results: dict[str, Any]) -> str:
    """How much processes outside the benchmark got in the way: on a shared 2-core machine, they can."""
    runs = results["floor"] + results["runs"] + results["full_speed"]
    repeated = sum(1 for r in runs if r.get("attempts", 1) > 1)
    still = [r for r in runs if r["background_cores"] >= 0.25]
    text = f"{repeated} of {len(runs)} runs were repeated because other processes took CPU"
    if still:
        text += f"; {len(still)} stayed disturbed (see 'background load' in 'limited by')"
    return text + "."


def _loadavg(meta: dict[str, Any]) -> str:
    return ", ".join(f"{v:.2f}" for v in meta["load_average_at_start"])
