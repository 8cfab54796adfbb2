"""The benchmark still runs: `python -m bench.run` on a tiny matrix (5 clients, 2-second answers, the in-memory layer,
one worker, a few idle sockets, a short full-speed round), as a real command with real daphne and upstream processes.

It checks what the benchmark itself must get right, not how fast the machine is: every client got its whole answer
exactly once and in order (no lost, duplicated or reordered delta, text equal to the tokens the upstream sent), in
both the direct floor and the relay, and the Markdown report and the JSON file were written. A second, smaller run
has every answer reason first (`--reasoning`): the reasoning arrives too, in frames of its own, with `pos` contiguous
across reasoning and deltas; it measures the floor twice (`--floor-runs`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.live import ROOT

CLIENTS = 5
TOKENS = 100  # 2 seconds at 50 tokens/s
FULL_SPEED = ["--full-streams", "2", "--full-tokens", "200"]
REASONING = 25  # half a second at 50 tokens/s, before 50 tokens of answer
# What a run counts that must be 0: deltas by `seq`, every kept frame by `pos`, the texts and the usage.
PROBLEMS = ("lost", "duplicates", "reordered", "pos_lost", "pos_duplicates", "pos_reordered", "bad_text", "bad_usage")
SMALL = ["--concurrency", str(CLIENTS), "--layers", "memory", "--workers", "1", "--database", "sqlite"]


def run_bench(json_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.run", *SMALL, *args, "--json", str(json_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bench_smoke_run_relays_every_token_once_in_order(tmp_path: Path) -> None:
    json_path = tmp_path / "bench-results.json"
    result = run_bench(json_path, "--seconds", "2", "--idle-sockets", "50", "--idle-seconds", "0.5", *FULL_SPEED)

    assert result.returncode == 0, f"bench failed:\n{result.stdout}\n{result.stderr}"
    assert "| layer | workers | C | done |" in result.stdout
    assert "### Targets" in result.stdout
    results = json.loads(json_path.read_text())
    floor, relay, full = results["floor"], results["runs"], results["full_speed"]
    assert [run["mode"] for run in floor + relay + full] == ["direct", "relay", "relay"]
    for run, tokens in [(floor[0], TOKENS), (relay[0], TOKENS), (full[0], 200)]:
        assert run["completed"] == run["clients"], run["ends"]
        assert {key: run[key] for key in PROBLEMS} == dict.fromkeys(PROBLEMS, 0)
        assert run["tokens"] == run["clients"] * tokens
        assert run["latency_ms"]["p50"] is not None
    assert relay[0]["clients"] == CLIENTS
    assert relay[0]["cpu_s"]["server"] > 0
    assert results["idle"][0]["sockets"] == 50


def test_bench_smoke_run_with_reasoning_relays_it_in_place(tmp_path: Path) -> None:
    json_path = tmp_path / "bench-results.json"
    result = run_bench(
        json_path,
        *["--seconds", "1", "--reasoning", str(REASONING), "--idle-sockets", "0", "--no-full-speed"],
        *["--floor-runs", "2"],
    )

    assert result.returncode == 0, f"bench failed:\n{result.stdout}\n{result.stderr}"
    assert f"### Reasoning: {REASONING} tokens before each answer" in result.stdout
    results = json.loads(json_path.read_text())
    floor, relay = results["floor"], results["runs"]
    assert [run["mode"] for run in floor + relay] == ["direct", "relay"]
    for run in (floor[0], relay[0]):
        assert run["completed"] == run["clients"] == CLIENTS, run["ends"]
        assert {key: run[key] for key in PROBLEMS} == dict.fromkeys(PROBLEMS, 0)
        assert run["tokens"] == CLIENTS * 50
        assert run["reasoning_tokens"] == CLIENTS * REASONING
        assert run["reasoning_frames"] >= CLIENTS
        assert run["ttfo_ms"]["p50"] < run["ttfd_ms"]["p50"]  # the first output is reasoning, half a second earlier
    assert relay[0]["server_first_output_ms"]["p50"] < relay[0]["server_ttft_ms"]["p50"]
    # Two floor runs: the floor is the one of the lower TTFD p50 (the lower middle of an even count).
    assert floor[0]["ttfd_ms"]["p50"] == min(floor[0]["ttfd_p50_of_runs"]) and len(floor[0]["ttfd_p50_of_runs"]) == 2
