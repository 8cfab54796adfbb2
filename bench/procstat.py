"""CPU time and memory of processes, read from Linux's /proc, sampled in the background during a run.

The benchmark shares two cores between the server, the upstream, Redis and the load generator, so every run reports
what each of them spent: a result is only meaningful once we know which process was out of CPU. Sampling (rather
than reading once at each end) lets a run take the CPU spent between two moments it only learns afterwards, such as
the last `done` a client received, and the peak memory while it lasted.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from dataclasses import dataclass, field

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process has used; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE
    except (FileNotFoundError, ProcessLookupError):
        return 0


def machine_seconds() -> dict[str, float]:
    """CPU seconds of all cores together since boot: running tasks, serving interrupts (the loopback traffic's
    softirq work is counted there, not in any process), and stolen by the hypervisor for other machines."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in stat.readline().split()[1:9])
    return {"tasks": (user + nice + system) / TICKS, "irq": (irq + softirq) / TICKS, "steal": steal / TICKS}


@dataclass
class Sample:
    at: float  # time.monotonic()
    cpu: dict[str, float]  # per group
    rss: dict[str, int]  # per group
    machine: dict[str, float]


@dataclass
class Monitor:
    """Samples the CPU and RSS of named groups of processes every `interval` seconds, on a thread of its own."""

    groups: dict[str, list[int]]
    interval: float = 0.1
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._last_cpu: dict[int, float] = {}  # a process that has exited keeps the CPU it had used
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-monitor", daemon=True)

    def __enter__(self) -> Monitor:
        self._take()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._take()

    def cpu_between(self, group: str, start: float, end: float) -> float:
        """CPU seconds the group used from `start` to `end` (monotonic), interpolated between samples."""
        return self._value_at(start, end, lambda s: s.cpu.get(group, 0.0))

    def machine_between(self, start: float, end: float) -> dict[str, float]:
        return {key: self._value_at(start, end, lambda s, key=key: s.machine[key]) for key in ("tasks", "irq", "steal")}

    def peak_cores(self, group: str, start: float, end: float, span: float = 1.0) -> float:
        """The most CPU the group used over any `span` seconds of the window, in cores: a run whose mean hides a
        saturated peak (the ramp is light, its middle heavy) still shows what limited it."""
        inside = [s for s in self.samples if start <= s.at <= end]
        best, j = 0.0, 0
        for i, first in enumerate(inside):
            j = max(j, i + 1)
            while j < len(inside) and inside[j].at - first.at < span:
                j += 1
            if j == len(inside):
                break
            last = inside[j]
            best = max(best, (last.cpu.get(group, 0.0) - first.cpu.get(group, 0.0)) / (last.at - first.at))
        return best

    def peak_rss(self, group: str, start: float = 0.0, end: float = float("inf")) -> int:
        """Largest total RSS the group had at one sample within the window."""
        inside = [s.rss.get(group, 0) for s in self.samples if start <= s.at <= end]
        return max(inside or [self.samples[-1].rss.get(group, 0)])

    def _value_at(self, start: float, end: float, value) -> float:
        return self._interpolate(end, value) - self._interpolate(start, value)

    def _interpolate(self, at: float, value) -> float:
        times = [s.at for s in self.samples]
        i = bisect.bisect_left(times, at)
        if i == 0:
            return value(self.samples[0])
        if i >= len(self.samples):
            return value(self.samples[-1])
        before, after = self.samples[i - 1], self.samples[i]
        share = (at - before.at) / ((after.at - before.at) or 1)
        return value(before) + share * (value(after) - value(before))

    def _take(self) -> None:
        for pid in {pid for pids in self.groups.values() for pid in pids}:
            self._last_cpu[pid] = max(self._last_cpu.get(pid, 0.0), cpu_seconds(pid))
        cpu = {name: sum(self._last_cpu[pid] for pid in pids) for name, pids in self.groups.items()}
        rss = {name: sum(rss_bytes(pid) for pid in pids) for name, pids in self.groups.items()}
        self.samples.append(Sample(time.monotonic(), cpu, rss, machine_seconds()))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._take()
