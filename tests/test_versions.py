"""Versions: a regenerated answer and an edited question are new exchanges beside the one they replace, and the
model is sent only the path of the conversation that leads to the new prompt."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from streaming.errors import BadRequest
from streaming.models import Conversation, Exchange
from streaming.protocol import Limits, parse_client_frame
from tests.conftest import new_session, open_socket, prompt
from tests.fake_openai import Script

LIMITS = Limits(models=("m",), max_prompt_chars=100, max_tokens=10, max_streams=3, max_frame_bytes=10_000)
SOME_ID = str(uuid.uuid4())


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


# ---- the frame ---------------------------------------------------------------------------------------------------


def test_a_regenerate_needs_no_content_and_names_the_exchange_it_replaces():
    parsed = parse_client_frame(prompt_frame(regenerate=SOME_ID, content=None), LIMITS)
    assert parsed.regenerate == uuid.UUID(SOME_ID)
    assert parsed.content == ""


def test_an_edit_carries_the_new_question():
    parsed = parse_client_frame(prompt_frame(edit=SOME_ID, content="Better question?"), LIMITS)
    assert (parsed.edit, parsed.content) == (uuid.UUID(SOME_ID), "Better question?")


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"regenerate": SOME_ID, "edit": SOME_ID}, "at most one of"),
        ({"edit": SOME_ID, "parent": SOME_ID}, "at most one of"),
        ({"regenerate": SOME_ID, "conversation": None}, "needs the 'conversation'"),
        ({"parent": "not-an-id"}, "'parent' must be an id"),
        ({"edit": SOME_ID, "content": "  "}, "The prompt is empty"),
        ({"regenerate": 7}, "'regenerate' must be an id"),
    ],
)
def test_a_placement_that_makes_no_sense_is_refused(fields, says):
    with pytest.raises(BadRequest, match=says):
        parse_client_frame(prompt_frame(**fields), LIMITS)


def prompt_frame(**fields):
    frame = {"type": "prompt", "request": "r", "content": "Hi", "conversation": str(uuid.uuid4()), **fields}
    return json.dumps({key: value for key, value in frame.items() if value is not None})


# ---- through the socket ------------------------------------------------------------------------------------------


async def ask(socket, content: str | None, request: str, **fields) -> list[dict]:
    frame = prompt(content or "", request=request, **fields)
    if content is None:
        del frame["content"]
    await socket.send(frame)
    frames = await socket.stream_to_end()
    assert frames[-1]["type"] == "done", frames[-1]
    return frames


async def two_turns(upstream, session: str | None = None) -> tuple[object, str, dict, dict]:
    """A conversation "Q1?" -> "A1." then "Q2?" -> "A2."; returns the socket, its id and the two `start` frames."""
    upstream.then(Script(tokens=["A1."]), Script(tokens=["A2."]))
    socket = await open_socket(session_key=session or await database_sync_to_async(new_session)())
    first = (await ask(socket, "Q1?", "q1"))[0]
    conversation = first["conversation"]
    second = (await ask(socket, "Q2?", "q2", conversation=conversation))[0]
    return socket, conversation, first, second


@pytest.mark.django_db(transaction=True)
async def test_a_prompt_follows_the_newest_exchange_and_start_says_so(upstream):
    socket, _, first, second = await two_turns(upstream)

    assert first["parent"] is None
    assert second["parent"] == first["stream"]
    assert upstream.requests[-1].body["messages"] == [user("Q1?"), assistant("A1."), user("Q2?")]
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_regenerate_asks_the_question_again_without_the_answer_it_replaces(upstream):
    socket, conversation, first, second = await two_turns(upstream)
    upstream.then(Script(tokens=["A2, again."]))

    frames = await ask(socket, None, "again", conversation=conversation, regenerate=second["stream"])

    start = frames[0]
    assert (start["parent"], start["content"]) == (first["stream"], "Q2?")
    # The question once, and not the answer it replaces.
    assert upstream.requests[-1].body["messages"] == [user("Q1?"), assistant("A1."), user("Q2?")]
    versions = await database_sync_to_async(list)(
        Exchange.objects.filter(parent_id=first["stream"]).order_by("created").values_list("prompt", "answer")
    )
    assert versions == [("Q2?", "A2."), ("Q2?", "A2, again.")]  # the log keeps both
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_an_edited_question_branches_there_and_the_model_sees_only_the_shown_path(upstream):
    socket, conversation, first, _second = await two_turns(upstream)
    upstream.then(Script(tokens=["B1."]), Script(tokens=["B2."]))

    edited = (await ask(socket, "Q1, edited?", "e1", conversation=conversation, edit=first["stream"]))[0]
    assert edited["parent"] is None
    assert upstream.requests[-1].body["messages"] == [user("Q1, edited?")]

    # The next prompt follows the edited branch, the newest: the first branch is not sent.
    follow = (await ask(socket, "Q3?", "q3", conversation=conversation))[0]
    assert follow["parent"] == edited["stream"]
    assert upstream.requests[-1].body["messages"] == [user("Q1, edited?"), assistant("B1."), user("Q3?")]
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_a_prompt_that_names_its_parent_continues_an_older_version(upstream):
    socket, conversation, first, second = await two_turns(upstream)
    upstream.then(Script(tokens=["B1."]), Script(tokens=["A3."]))
    await ask(socket, "Q1, edited?", "e1", conversation=conversation, edit=first["stream"])

    # The page switched back to the first version and goes on from its last answer.
    start = (await ask(socket, "Q3?", "q3", conversation=conversation, parent=second["stream"]))[0]

    assert start["parent"] == second["stream"]
    assert upstream.requests[-1].body["messages"] == [
        user("Q1?"),
        assistant("A1."),
        user("Q2?"),
        assistant("A2."),
        user("Q3?"),
    ]
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_every_tab_of_the_client_learns_where_a_new_version_goes(upstream):
    session = await database_sync_to_async(new_session)()
    asking, conversation, first, second = await two_turns(upstream, session)
    watching = await open_socket(session_key=session)
    upstream.then(Script(tokens=["A2, again."]))

    await asking.send(prompt(request="again", conversation=conversation, regenerate=second["stream"]))
    mine, theirs = await asking.stream_to_end(), await watching.stream_to_end()

    assert theirs == mine
    assert (theirs[0]["type"], theirs[0]["parent"], theirs[0]["content"]) == ("start", first["stream"], "Q2?")
    await asking.close()
    await watching.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("field", ["regenerate", "edit", "parent"])
async def test_an_exchange_of_another_conversation_is_not_found_and_nothing_is_saved(upstream, field):
    socket, conversation, _first, _second = await two_turns(upstream)
    other = (await ask(socket, "Elsewhere?", "o1"))[0]
    exchanges = await database_sync_to_async(Exchange.objects.count)()

    await socket.send(prompt("Q?", request="bad", conversation=conversation, **{field: other["stream"]}))
    error = await socket.receive()

    assert (error["type"], error["code"], error["request"]) == ("error", "not_found", "bad")
    assert await database_sync_to_async(Exchange.objects.count)() == exchanges
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_the_conversation_api_gives_each_exchange_its_parent(upstream, client):
    session = await database_sync_to_async(new_session)()
    socket, conversation, first, second = await two_turns(upstream, session)
    await socket.close()
    client.cookies.load({"sessionid": session})

    detail = (await database_sync_to_async(client.get)(f"/api/conversations/{conversation}/")).json()

    assert [(e["stream"], e["parent"]) for e in detail["exchanges"]] == [
        (first["stream"], None),
        (second["stream"], first["stream"]),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_migration_links_the_exchanges_logged_before_versions_in_order():
    executor = MigrationExecutor(connection)
    executor.migrate([("streaming", "0005_exchange_feedback")])
    old = executor.loader.project_state([("streaming", "0005_exchange_feedback")]).apps
    OldConversation, OldExchange = old.get_model("streaming", "Conversation"), old.get_model("streaming", "Exchange")
    made = OldConversation.objects.create(client="c", title="t")
    ids = [
        OldExchange.objects.create(conversation=made, client="c", request="r", model="m", prompt=f"Q{i}").id
        for i in range(3)
    ]
    for minute, exchange_id in enumerate(ids):  # in order, whatever the clock's resolution
        OldExchange.objects.filter(id=exchange_id).update(created=datetime(2026, 1, 1, 12, minute, tzinfo=UTC))

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("streaming"))  # the latest: later tests need every column

    parents = dict(Exchange.objects.filter(conversation_id=made.id).values_list("id", "parent_id"))
    assert parents == {ids[0]: None, ids[1]: ids[0], ids[2]: ids[1]}
    assert Conversation.objects.get(id=made.id).settings == {}
