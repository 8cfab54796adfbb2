"""What a worker leaves for another to go on with its answer, and how the other goes on: tested without a socket."""

from __future__ import annotations

import pytest

from streaming.clients import Client
from streaming.relay.handover import CannotResume, Handover, Plan, fields_of, fields_of_plan, resume_of

PLAN = Plan(
    client=Client(key="user:7", user_id=7, is_staff=True),
    model="gpt-5",
    temperature=None,
    max_tokens=512,
    tools=["current_time", "place_order"],
    round=2,
    pos=4,
    messages=[{"role": "user", "content": "Hi"}],
    usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
)


def stored(fields: dict[str, str | bytes]) -> dict[str, str]:
    """The fields as Redis gives them back: text."""
    return {name: value.decode() if isinstance(value, bytes) else value for name, value in fields.items()}


def frame(kind: str, **fields: object) -> dict:
    return {"type": kind, **fields}


def round_one() -> list[dict]:
    """The first round: some text and a call that ran; the plan of round 2 begins after these four frames."""
    return [
        frame("delta", text="Let me look."),
        frame("tool_call", call="call_a", name="current_time"),
        frame("tool_running", call="call_a"),
        frame("tool_result", call="call_a", status="done", result="noon", error=None, duration_ms=1),
    ]


def test_a_plan_and_what_follows_it_come_back_as_they_were_kept():
    fields = {
        name: value.decode() if isinstance(value, bytes) else value for name, value in fields_of_plan(PLAN).items()
    }
    fields |= {"response": "resp_1", "after": "41", "index:call_b": "2", "reasoning_field": "reasoning_summary"}

    handover = Handover.of_fields(fields)

    assert handover == Handover(
        plan=PLAN, response="resp_1", after=41, call_indexes={"call_b": 2}, reasoning_field="reasoning_summary"
    )
    assert Handover.of_fields({"after": "3"}) is None  # no round began: nothing to go on with


@pytest.mark.parametrize(
    "handover",
    [
        Handover(plan=PLAN),
        Handover(plan=PLAN, response="resp_1", after=41, call_indexes={"call_b": 2}, reasoning_field="reasoning"),
    ],
)
def test_a_handover_written_again_from_a_taken_over_stream_reads_back_as_it_was(handover):
    assert Handover.of_fields(stored(fields_of(handover))) == handover


def test_a_stream_taken_over_mid_answer_goes_on_after_the_last_event_relayed_with_the_rounds_text():
    frames = [*round_one(), frame("delta", text="It is "), frame("delta", text="noon")]
    handover = Handover(plan=PLAN, response="resp_2", after=17)

    resume = resume_of(handover, frames, idempotent=set())

    assert (resume.round, resume.response, resume.after) == (2, "resp_2", 17)
    assert resume.texts == ["It is ", "noon"]  # this round's, not the first round's "Let me look."
    assert resume.round_calls == {}


def test_a_round_whose_response_was_never_named_is_asked_again():
    handover = Handover(plan=PLAN)

    resume = resume_of(handover, round_one(), idempotent=set())

    assert (resume.response, resume.after, resume.texts) == (None, -1, [])


def test_a_call_being_written_goes_on_at_its_place_in_the_output():
    frames = [
        *round_one(),
        frame("tool_call", call="call_b", name="place_order"),
        frame("tool_arguments", call="call_b", text='{"n":'),
    ]
    handover = Handover(plan=PLAN, response="resp_2", after=9, call_indexes={"call_b": 1})

    resume = resume_of(handover, frames, idempotent=set())

    ((index, made),) = resume.round_calls.items()
    assert index == 1 and made.call.id == "call_b" and made.call.arguments_text == '{"n":'
    assert made.call.given_id and made.outcome is None and not made.running


def test_a_call_that_was_running_is_not_run_again_unless_its_tool_is_idempotent():
    frames = [
        *round_one(),
        frame("tool_call", call="call_b", name="place_order"),
        frame("tool_running", call="call_b"),
    ]
    handover = Handover(plan=PLAN, response="resp_2", after=9, call_indexes={"call_b": 0})

    with pytest.raises(CannotResume, match="place_order"):
        resume_of(handover, frames, idempotent={"current_time"})
    resume = resume_of(handover, frames, idempotent={"place_order"})
    assert resume.round_calls[0].running and resume.round_calls[0].outcome is None


def test_a_call_whose_place_in_the_output_was_not_kept_cannot_go_on():
    frames = [*round_one(), frame("tool_call", call="call_b", name="place_order")]

    with pytest.raises(CannotResume):
        resume_of(Handover(plan=PLAN, response="resp_2", after=9), frames, idempotent=set())


def test_a_record_that_lost_what_the_handover_says_was_relayed_cannot_go_on_and_names_the_response_to_cancel():
    handover = Handover(plan=PLAN, response="resp_2", after=17)

    for frames in (round_one()[:2], round_one()):  # shorter than the plan's place; nothing after it, yet relayed
        with pytest.raises(CannotResume) as refused:
            resume_of(handover, frames, idempotent=set())
        assert refused.value.response == "resp_2"


def test_a_round_just_begun_has_neither_a_response_nor_a_place_to_re_attach_after():
    fields = {
        name: value.decode() if isinstance(value, bytes) else value for name, value in fields_of_plan(PLAN).items()
    }

    handover = Handover.of_fields(fields)

    assert (handover.plan, handover.response, handover.after) == (PLAN, None, None)
