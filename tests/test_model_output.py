"""What a model writes, turned into the relay's parts without a socket: reasoning in each shape servers send it,
think tags split across chunks, tool calls assembled from fragments, and the log's transcript of a stream."""

from __future__ import annotations

import orjson
import pytest

from streaming import protocol
from streaming.errors import UpstreamStreamError
from streaming.provider.pieces import merge_text
from streaming.provider.upstream import Piece, pieces_of, read_chunk
from streaming.relay.thinking import ThinkSplitter
from streaming.relay.tool_calls import Answered, Arguments, CallAssembler, CallFragment, Opened, round_messages
from streaming.relay.transcript import Transcript, place_after_delta, replay


def chunk(delta: dict, finish_reason: str | None = None) -> dict:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


DETAILS = [{"type": "reasoning.text", "text": "Hm"}, {"type": "reasoning.summary", "summary": "m."}]


@pytest.mark.parametrize(
    ("delta", "field"),
    [
        ({"reasoning_content": "Hmm.", "content": None}, "reasoning_content"),  # DeepSeek, llama.cpp
        ({"reasoning": "Hmm."}, "reasoning"),  # vLLM, Ollama
        ({"reasoning": "Hmm.", "reasoning_details": [{"type": "reasoning.text", "text": "Hmm."}]}, "reasoning"),
        ({"reasoning_details": DETAILS}, "reasoning_details"),  # OpenRouter, when it sends only the details
    ],
    ids=["reasoning_content", "reasoning", "reasoning-and-details", "details-only"],
)
def test_reasoning_is_read_once_in_every_shape_and_says_where_it_came(delta, field):
    assert read_chunk(chunk(delta)) == Piece(reasoning="Hmm.", reasoning_field=field)


def test_an_encrypted_reasoning_detail_adds_no_text():
    details = [{"type": "reasoning.encrypted", "data": "c2VjcmV0"}]
    assert read_chunk(chunk({"reasoning_details": details})) == Piece()


def test_tool_call_fragments_are_read_with_their_index_id_name_and_arguments():
    calls = [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "search", "arguments": ""}},
        {"index": 1, "function": {"arguments": '{"q"'}},
    ]
    assert read_chunk(chunk({"tool_calls": calls})).calls == (
        CallFragment(index=0, id="call_1", name="search", arguments=""),
        CallFragment(index=1, arguments='{"q"'),
    )


def test_arguments_sent_as_an_object_are_read_as_their_json():
    calls = [{"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}]
    assert read_chunk(chunk({"tool_calls": calls})).calls == (
        CallFragment(index=0, id="c", name="f", arguments='{"a":1}'),
    )


def test_a_reads_runs_of_plain_text_become_one_piece_and_everything_else_keeps_its_place():
    call = Piece(calls=(CallFragment(index=0, id="c", name="f"),))
    pieces = [
        Piece(text="Hel"),
        Piece(text="lo"),
        Piece(reasoning="Hm", reasoning_field="reasoning"),
        Piece(text=", "),
        Piece(text="you"),
        call,
        Piece(text="!", finish_reason="stop"),
        Piece(usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}),
    ]
    assert merge_text(pieces) == [
        Piece(text="Hello"),
        pieces[2],
        Piece(text=", you"),
        call,
        *pieces[-2:],
    ]


def test_text_marked_with_its_place_in_the_providers_stream_is_not_joined():
    pieces = [Piece(text="a", at=1), Piece(text="b", at=2), Piece(text="c"), Piece(text="")]
    assert merge_text(pieces) == pieces


def test_what_a_read_brought_before_an_error_event_is_relayed_before_the_error_is_raised():
    payloads = [orjson.dumps(chunk({"content": "Hel"})), b'{"error": {"message": "overloaded"}}', b"[DONE]"]
    pieces, done, failure = pieces_of(payloads, read_chunk)
    assert (pieces, done, type(failure)) == ([Piece(text="Hel")], False, UpstreamStreamError)
    assert pieces_of([orjson.dumps(chunk({"content": "!"})), b"[DONE]", b"ignored"], read_chunk) == (
        [Piece(text="!")],
        True,
        None,
    )


def split_all(pieces: list[str], *, inside: bool = False) -> tuple[str, str]:
    splitter = ThinkSplitter(inside=inside)
    reasoning, answer = [], []
    for piece in [*(splitter.feed(p) for p in pieces), splitter.flush()]:
        reasoning.append(piece[0])
        answer.append(piece[1])
    return "".join(reasoning), "".join(answer)


@pytest.mark.parametrize(
    "pieces",
    [
        ["<think>Let me see.</think>\n\nThe answer."],
        ["<thi", "nk>Let me", " see.</th", "ink>", "\n\nThe answer."],
        ["\n", "<", "t", "h", "i", "n", "k", ">Let me see.<", "/", "think", ">The answer."],
    ],
    ids=["one-chunk", "tags-split", "char-by-char"],
)
def test_a_think_block_at_the_start_is_reasoning_however_its_tags_are_split(pieces):
    assert split_all(pieces) == ("Let me see.", "The answer.")


def test_a_think_tag_later_in_the_content_is_answer_text():
    assert split_all(["The tag ", "<think>", " is used by models.</think>"]) == (
        "",
        "The tag <think> is used by models.</think>",
    )


def test_a_lone_closing_tag_ends_the_reasoning_of_a_model_whose_template_opens_it():
    assert split_all(["Let me", " see.</thi", "nk>The answer."], inside=True) == ("Let me see.", "The answer.")


def test_reasoning_leaves_at_once_except_what_could_begin_the_closing_tag():
    splitter = ThinkSplitter()
    assert splitter.feed("<think>Step one") == ("Step one", "")
    assert splitter.feed(" then </th") == (" then ", "")
    assert splitter.feed("eory") == ("</theory", "")


def test_content_that_only_looks_like_the_start_of_a_tag_is_answer_text_at_the_end():
    assert split_all(["<th"]) == ("", "<th")


def test_plain_text_passes_through_piece_by_piece():
    splitter = ThinkSplitter()
    assert [splitter.feed(p) for p in ["Hello", ", world"]] == [("", "Hello"), ("", ", world")]


def test_fragments_are_assembled_by_index_and_relayed_as_they_come():
    calls = CallAssembler(id_prefix="x")
    events = [
        *calls.add(CallFragment(index=0, id="a", name="search", arguments="")),
        *calls.add(CallFragment(index=1, id="b", name="now")),
        *calls.add(CallFragment(index=0, arguments='{"q": ')),
        *calls.add(CallFragment(index=1, arguments="{}")),
        *calls.add(CallFragment(index=0, arguments='"x"}')),
    ]
    assert events == [
        Opened("a", "search"),
        Opened("b", "now"),
        Arguments("a", '{"q": '),
        Arguments("b", "{}"),
        Arguments("a", '"x"}'),
    ]
    assert [(c.id, c.name, c.arguments_text) for c in calls.calls] == [
        ("a", "search", '{"q": "x"}'),
        ("b", "now", "{}"),
    ]


def test_whole_calls_that_all_say_index_0_are_separate_calls():
    calls = CallAssembler(id_prefix="x")
    calls.add(CallFragment(index=0, id="a", name="now", arguments="{}"))
    calls.add(CallFragment(index=0, id="b", name="search", arguments='{"q": "y"}'))
    assert [(c.id, c.name, c.arguments_text) for c in calls.calls] == [
        ("a", "now", "{}"),
        ("b", "search", '{"q": "y"}'),
    ]


def test_a_call_without_an_id_gets_one_and_arguments_before_the_name_are_kept():
    calls = CallAssembler(id_prefix="call_s_")
    assert calls.add(CallFragment(index=0, arguments='{"a"')) == []
    assert calls.add(CallFragment(index=0, name="f", arguments=": 1}")) == [
        Opened("call_s_1", "f"),
        Arguments("call_s_1", '{"a"'),
        Arguments("call_s_1", ": 1}"),
    ]


def test_an_ended_stream_replays_from_the_log_frame_for_frame_as_it_was_sent():
    stream = "0b6e0000-0000-0000-0000-000000000000"
    sent = [
        protocol.reasoning_frame(stream=stream, pos=1, text="Think"),
        protocol.reasoning_frame(stream=stream, pos=2, text="ing."),
        protocol.delta_frame(stream=stream, pos=3, seq=1, text="Let me look."),
        protocol.tool_call_frame(stream=stream, pos=4, call="c1", name="now"),
        protocol.tool_arguments_frame(stream=stream, pos=5, call="c1", text="{}"),
        protocol.tool_running_frame(stream=stream, pos=6, call="c1"),
        protocol.tool_result_frame(stream=stream, pos=7, call="c1", result="noon", error=None, duration_ms=3),
        protocol.delta_frame(stream=stream, pos=8, seq=2, text=" It is noon."),
    ]
    encoded = [protocol.encode(frame) for frame in sent]
    transcript = Transcript.of_frames(encoded)

    assert (transcript.answer, transcript.reasoning) == ("Let me look. It is noon.", "Thinking.")
    assert replay(stream, answer=transcript.answer, reasoning=transcript.reasoning, layout=transcript.layout) == encoded
    assert orjson.loads(orjson.dumps(transcript.layout)) == transcript.layout  # it is stored as JSON
    assert [place_after_delta(transcript.layout, seq) for seq in (0, 1, 2, 3)] == [0, 3, 8, None]


def test_ids_stay_unique_and_short_and_overlong_names_are_cut():
    calls = CallAssembler(id_prefix="ours_")
    calls.add(CallFragment(index=0, id="dup", name="echo", arguments="{}"))
    calls.add(CallFragment(index=1, id="dup", name="other", arguments="{}"))
    calls.add(CallFragment(index=2, id="x" * 101, name="n" * 500))
    assert [(c.id, c.name) for c in calls.calls] == [("dup", "echo"), ("ours_2", "other"), ("ours_3", "n" * 64)]


def test_an_id_that_comes_after_the_call_began_does_not_split_it():
    calls = CallAssembler(id_prefix="ours_")
    calls.add(CallFragment(index=0, name="f", arguments='{"a": '))
    calls.add(CallFragment(index=0, id="late", arguments="1}"))
    assert [(c.id, c.arguments_text) for c in calls.calls] == [("ours_1", '{"a": 1}')]


def test_whole_calls_without_ids_at_one_index_are_told_apart_by_their_names():
    calls = CallAssembler(id_prefix="ours_")
    calls.add(CallFragment(index=0, name="now", arguments="{}"))
    calls.add(CallFragment(index=0, name="search", arguments='{"q": "x"}'))
    assert [(c.name, c.arguments_text) for c in calls.calls] == [("now", "{}"), ("search", '{"q": "x"}')]


def test_a_server_that_splits_reasoning_itself_keeps_a_think_prefilled_models_content_as_the_answer():
    splitter = ThinkSplitter(inside=True)
    splitter.server_splits()  # a `reasoning_content` piece came first
    assert splitter.feed("The answer.") == ("", "The answer.")


def test_the_history_of_a_round_sends_arguments_that_are_not_an_object_as_an_empty_one():
    calls = [
        Answered("a", "search", '{"query": "x"}', "found"),
        Answered("b", "search", '{"query": "cut off', '{"error": "The arguments are not valid JSON."}'),
        Answered("c", "now", "[1]", "noon"),
    ]
    assistant, *results = round_messages(text="", calls=calls, reasoning="Two looks.")
    assert assistant["content"] is None and assistant["reasoning_content"] == "Two looks."
    assert [c["function"]["arguments"] for c in assistant["tool_calls"]] == ['{"query": "x"}', "{}", "{}"]
    assert [(r["role"], r["tool_call_id"]) for r in results] == [("tool", "a"), ("tool", "b"), ("tool", "c")]
    assert "reasoning_content" not in round_messages(text="t", calls=calls[:1])[0]
