"""The garbage collector waits while new prompts await their first words on a late loop (`deployment.collector`):
its switches watched through a stand-in, so that the test process's own collector is left alone."""

from __future__ import annotations

from streaming.deployment.collector import MOST_HELD_S, Collector


class Switch:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def collector(self) -> Collector:
        return Collector(isenabled=lambda: self.enabled, enable=self.on, disable=self.off)

    def on(self) -> None:
        self.enabled = True

    def off(self) -> None:
        self.enabled = False


def test_held_from_when_prompts_wait_on_a_late_loop_until_none_does():
    switch = Switch()
    collector = switch.collector()
    states = []
    for now, waiting, late in (
        (0.0, False, True),  # late, nobody waiting
        (0.1, True, False),  # waiting on a loop on time
        (0.2, True, True),  # held
        (0.3, True, False),  # on time for a moment in the middle of a burst: still held
        (0.4, False, True),  # every prompt has its first words
        (0.5, True, False),
    ):
        collector.hold(prompts_waiting=waiting, late=late, now=now)
        states.append(switch.enabled)
    assert states == [True, True, False, False, True, True]
    collector.hold(prompts_waiting=True, late=True, now=0.6)
    collector.let_go()
    assert switch.enabled


def test_held_at_most_a_few_seconds_in_a_row_so_that_a_worker_late_for_good_still_collects():
    switch = Switch()
    collector = switch.collector()
    collector.hold(prompts_waiting=True, late=True, now=10.0)
    collector.hold(prompts_waiting=True, late=True, now=10.0 + MOST_HELD_S - 0.1)
    held_to_the_end = not switch.enabled
    collector.hold(prompts_waiting=True, late=True, now=10.0 + MOST_HELD_S)
    collector.hold(prompts_waiting=True, late=True, now=10.0 + MOST_HELD_S + 5)  # not held again until none waited
    assert held_to_the_end and switch.enabled
    collector.hold(prompts_waiting=False, late=True, now=20.0)
    collector.hold(prompts_waiting=True, late=True, now=20.1)
    assert not switch.enabled


def test_a_collector_turned_off_by_someone_else_stays_off():
    switch = Switch(enabled=False)
    collector = switch.collector()
    collector.hold(prompts_waiting=True, late=True, now=0.0)
    collector.hold(prompts_waiting=False, late=True, now=0.1)
    collector.let_go()
    assert not switch.enabled
