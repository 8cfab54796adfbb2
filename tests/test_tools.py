"""Tools: schemas built from signatures, who is offered what, and every way a call the model wrote can go wrong."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import typing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from pydantic import Field

from streaming import selectors
from streaming.models import Conversation, Exchange
from streaming.tools import (
    INVALID_ARGUMENTS,
    TOOL_FAILED,
    TOOL_NOT_OFFERED,
    TOOL_TIMEOUT,
    Caller,
    Outcome,
    ToolError,
    offered_tools,
    registered_tools,
    run_call,
    strict_schemas,
    tool,
    tool_of,
)
from streaming.tools.builtin import current_time, search_history

# A sync tool runs between `close_old_connections()` calls, which pytest-django counts as database access.
pytestmark = pytest.mark.django_db

ANONYMOUS = Caller(key="session:abc", session_hash="abc")
USER = Caller(key="user:1", user_id=1)
STAFF = Caller(key="user:2", user_id=2, is_staff=True)

SECRET = "hunter" + "2"
CALLS: list[str] = []  # the test tools that ran, in order


@dataclass
class Gate:
    """What the waiting tools wait on: `entered` when a call has begun, `release` to let a sync one return."""

    loop: asyncio.AbstractEventLoop
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False


GATE: Gate


@tool
def echo(text: str, times: Annotated[int, Field(ge=1, le=3)] = 1, *, caller: Caller) -> dict[str, Any]:
    """Repeat a text, and say who asked."""
    CALLS.append("echo")
    return {"text": text * times, "caller": caller.key}


@tool
async def shout(text: str) -> str:
    """Say a text louder."""
    await asyncio.sleep(0)
    return text.upper()


@tool
def thread_of_call() -> dict[str, Any]:
    """The thread the call ran on."""
    return {"ident": threading.get_ident(), "name": threading.current_thread().name}


@tool
def blocking() -> str:
    """Blocks until the test releases it."""
    GATE.loop.call_soon_threadsafe(GATE.entered.set)
    try:
        GATE.release.wait(10)
        return "released"
    finally:
        GATE.finished.set()


@tool
async def waiting() -> str:
    """Waits for an event that never comes."""
    GATE.entered.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        GATE.cancelled = True
        raise
    return "never"


@tool
def refusing(number: int) -> str:
    """Looks up an order that does not exist."""
    raise ToolError(f"There is no order {number}.")


@tool
def crashing() -> str:
    """Fails the way a bug does."""
    raise RuntimeError(f"password={SECRET} host=db.internal")  # as if from data: the log's source lines show no value


@tool
def wordy(size: int) -> str:
    """A text of `size` characters."""
    return "x" * size


@tool
def structured() -> dict[str, Any]:
    """A result that is not text."""
    return {"when": datetime(2026, 1, 2, tzinfo=UTC), "count": 1}


@tool(login_required=True)
def members_only() -> str:
    """Only for people who are logged in."""
    CALLS.append("members_only")
    return "member"


@tool(staff_required=True)
def staff_only() -> str:
    """Only for staff."""
    CALLS.append("staff_only")
    return "staff"


@tool(name="renamed")
def original_name() -> str:
    """Registered under another name."""
    return "renamed"


TEST_TOOLS = [
    "echo",
    "shout",
    "thread_of_call",
    "blocking",
    "waiting",
    "refusing",
    "crashing",
    "wordy",
    "structured",
    "members_only",
    "staff_only",
    "original_name",
]


@pytest.fixture
def registry(settings: Any) -> set[str]:
    """The test tools as `STREAMING_TOOLS`; returns the names of all of them, as if all were offered."""
    settings.STREAMING_TOOLS = [f"tests.test_tools.{name}" for name in TEST_TOOLS]
    CALLS.clear()
    return set(registered_tools())


@pytest.fixture
async def gate() -> Any:
    global GATE
    GATE = Gate(loop=asyncio.get_running_loop())
    yield GATE
    GATE.release.set()  # never leave a pool thread blocked behind a test


async def entered(gate: Gate) -> None:
    async with asyncio.timeout(5):
        await gate.entered.wait()


async def call(name: str, arguments: Any = None, *, caller: Caller = ANONYMOUS, offered: Any) -> Outcome:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return await run_call(name=name, arguments=text, caller=caller, offered=offered)


# --- Registration ---------------------------------------------------------------------------------------------------


def test_the_schema_comes_from_the_signature_without_the_caller():
    echo_tool = tool_of(echo)
    assert echo_tool.name == "echo" and echo_tool.description == "Repeat a text, and say who asked."
    assert echo_tool.caller_parameter == "caller"
    assert echo_tool.param_schema() == {
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "times": {"type": "integer", "minimum": 1, "maximum": 3, "default": 1},
        },
        "required": ["text"],
        "additionalProperties": False,
    }
    assert tool_of(search_history).param_schema()["properties"]["limit"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10,
        "default": 5,
        "description": "How many exchanges to return at most.",
    }


def test_the_decorator_returns_the_function_still_callable():
    assert echo("ab", 2, caller=USER) == {"text": "abab", "caller": "user:1"}
    assert asyncio.run(shout("hi")) == "HI"
    assert tool_of(original_name).name == "renamed" and original_name() == "renamed"


def test_a_function_without_a_docstring_is_refused():
    def undocumented(text: str) -> str:
        return text

    with pytest.raises(TypeError, match="docstring"):
        tool(undocumented)


def test_a_parameter_without_a_type_hint_is_refused():
    def untyped(text) -> str:  # type: ignore[no-untyped-def]
        """Has a parameter without a hint."""
        return text

    with pytest.raises(TypeError, match="'text' has no type hint"):
        tool(untyped)


@pytest.mark.parametrize("hint", ["Caller | None", "Optional[Caller]", "list[Caller]"])
def test_a_caller_the_model_could_fill_in_is_refused(hint):
    namespace = {"Caller": Caller, "Optional": typing.Optional}
    exec(f"def lookup(q: str, caller: {hint} = None) -> str:\n    'Look up.'\n    return q", namespace)
    with pytest.raises(TypeError, match="typed exactly `Caller`"):
        tool(namespace["lookup"])


def test_an_annotated_caller_is_the_caller_and_not_in_the_schema():
    @tool
    def lookup(q: str, caller: typing.Annotated[Caller, "who asks"]) -> str:
        """Look up."""
        return q

    assert tool_of(lookup).caller_parameter == "caller"
    assert "caller" not in json.dumps(tool_of(lookup).param_schema())


def test_variadic_parameters_and_bad_names_are_refused():
    def variadic(*texts: str) -> str:
        """Takes any number of texts."""
        return ""

    with pytest.raises(TypeError, match="cannot be passed by name"):
        tool(variadic)
    with pytest.raises(TypeError, match="letters, digits"):
        tool(name="no spaces allowed")(original_name)


def test_strict_only_when_every_parameter_is_required():
    strict = tool_of(wordy).openai_tool(strict=True)
    assert strict == {
        "type": "function",
        "function": {
            "name": "wordy",
            "description": "A text of `size` characters.",
            "parameters": {
                "type": "object",
                "properties": {"size": {"type": "integer"}},
                "required": ["size"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }
    assert "strict" not in tool_of(wordy).openai_tool(strict=False)["function"]
    optional = tool_of(echo).openai_tool(strict=True)["function"]  # `times` has a default
    assert "strict" not in optional and optional["parameters"] == tool_of(echo).param_schema()

    def tagged(tags: dict[str, int]) -> str:
        """A free-form mapping, which strict mode cannot describe."""
        return ""

    assert "strict" not in tool_of(tool(tagged)).openai_tool(strict=True)["function"]


def test_the_registry_follows_the_setting(settings):
    settings.STREAMING_TOOLS = ["tests.test_tools.echo"]
    assert list(registered_tools()) == ["echo"]
    settings.STREAMING_TOOLS = ["tests.test_tools.original_name", "tests.test_tools.wordy"]
    assert list(registered_tools()) == ["renamed", "wordy"]


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["tests.test_tools.no_such_tool"], "cannot be imported"),
        (["tests.test_tools.call"], "not decorated"),
        (["tests.test_tools.echo", "tests.test_tools.echo"], "two tools called 'echo'"),
    ],
)
def test_a_wrong_entry_in_the_setting_is_refused(settings, paths, message):
    settings.STREAMING_TOOLS = paths
    with pytest.raises(ImproperlyConfigured, match=message):
        registered_tools()


# --- Who is offered what --------------------------------------------------------------------------------------------


def test_the_demo_model_is_offered_the_tools_and_without_strict_schemas(registry, settings):
    settings.STREAMING_OPENAI_API_KEY = ""
    assert "echo" in {t.name for t in offered_tools(caller=ANONYMOUS, model="demo")}
    assert strict_schemas() is False


def test_every_model_on_openais_own_api_is_offered_the_tools_with_strict_schemas(registry, settings):
    settings.STREAMING_OPENAI_API_KEY = "sk-test"
    for base_url in (None, "https://api.openai.com/v1"):
        settings.STREAMING_OPENAI_BASE_URL = base_url
        assert offered_tools(caller=ANONYMOUS, model="gpt-anything")
        assert strict_schemas() is True


def test_no_model_elsewhere_is_offered_tools_unless_the_setting_names_it(registry, settings):
    settings.STREAMING_OPENAI_API_KEY = "sk-test"
    settings.STREAMING_OPENAI_BASE_URL = "http://127.0.0.1:11434/v1"
    assert offered_tools(caller=ANONYMOUS, model="llama3") == []
    assert strict_schemas() is False
    settings.STREAMING_TOOL_MODELS = ["qwen3"]
    assert offered_tools(caller=ANONYMOUS, model="llama3") == []
    assert offered_tools(caller=ANONYMOUS, model="qwen3")
    settings.STREAMING_TOOL_MODELS = ["*"]
    assert offered_tools(caller=ANONYMOUS, model="llama3")
    settings.STREAMING_OPENAI_BASE_URL = None
    settings.STREAMING_TOOL_MODELS = ["none"]
    assert offered_tools(caller=ANONYMOUS, model="gpt-anything") == []


def test_tools_that_require_login_or_staff_are_offered_only_to_those(registry, settings):
    settings.STREAMING_OPENAI_API_KEY = ""

    def offered(caller: Caller) -> set[str]:
        return {t.name for t in offered_tools(caller=caller, model="demo")} & {"members_only", "staff_only"}

    assert offered(ANONYMOUS) == set()
    assert offered(USER) == {"members_only"}
    assert offered(STAFF) == {"members_only", "staff_only"}


# --- Running a call -------------------------------------------------------------------------------------------------


async def test_a_sync_tool_runs_with_the_caller_filled_in(registry):
    outcome = await call("echo", {"text": "ab", "times": 2}, caller=USER, offered=registry)
    assert outcome.status == "done" and outcome.error is None
    assert json.loads(outcome.result) == {"text": "abab", "caller": "user:1"}
    assert outcome.for_model() == outcome.result and outcome.duration_ms >= 0


async def test_an_async_tool_runs(registry):
    outcome = await call("shout", {"text": "hi"}, offered=registry)
    assert (outcome.status, outcome.result) == ("done", "HI")


async def test_a_sync_tool_runs_on_a_thread_of_its_own_not_the_database_thread(registry):
    database_thread = await database_sync_to_async(threading.get_ident)()
    ran_on = json.loads((await call("thread_of_call", offered=registry)).result)
    assert ran_on["ident"] not in (database_thread, threading.get_ident())
    assert ran_on["name"].startswith("streaming-tool")


async def test_a_result_that_is_not_text_is_sent_as_json(registry):
    outcome = await call("structured", "", offered=registry)  # some servers send "" for no arguments
    assert json.loads(outcome.result) == {"when": "2026-01-02 00:00:00+00:00", "count": 1}


async def test_a_long_result_is_cut_and_says_so(registry, settings):
    settings.STREAMING_TOOL_RESULT_CHARS = 100
    assert (await call("wordy", {"size": 100}, offered=registry)).result == "x" * 100
    cut = (await call("wordy", {"size": 1000}, offered=registry)).result
    assert len(cut) <= 100 and cut.startswith("xxx") and "cut" in cut and "1000 characters" in cut


async def test_a_sync_tool_that_takes_too_long_times_out(registry, settings, gate):
    settings.STREAMING_TOOL_SECONDS = 0.05
    async with asyncio.timeout(5):  # without the tool's own time limit this would wait for ever
        outcome = await call("blocking", offered=registry)
    assert (outcome.status, outcome.error) == ("failed", {"code": TOOL_TIMEOUT, "message": "The tool took too long."})
    assert gate.entered.is_set() and not gate.finished.is_set()  # given up on while it still ran


async def test_an_async_tool_that_takes_too_long_times_out_and_is_cancelled(registry, settings, gate):
    settings.STREAMING_TOOL_SECONDS = 0.05
    async with asyncio.timeout(5):  # without the tool's own time limit this would wait for ever
        outcome = await call("waiting", offered=registry)
    assert outcome.error_code == TOOL_TIMEOUT and gate.cancelled


async def test_a_tool_error_message_reaches_the_model(registry):
    outcome = await call("refusing", {"number": 42}, offered=registry)
    assert outcome.error == {"code": TOOL_FAILED, "message": "There is no order 42."}
    assert json.loads(outcome.for_model()) == {"error": "There is no order 42."}


async def test_another_exception_gives_a_fixed_message_and_its_text_is_not_logged(registry, caplog):
    caplog.set_level(logging.DEBUG)
    outcome = await call("crashing", offered=registry)
    assert outcome.error == {"code": TOOL_FAILED, "message": "The tool failed."}
    assert SECRET not in outcome.for_model()
    logged = [logging.Formatter().format(record) for record in caplog.records]
    assert any("crashing" in line and "RuntimeError" in line for line in logged)
    assert not any(SECRET in line for line in logged)


async def test_a_tool_not_offered_is_refused_and_not_run(registry):
    not_offered = await call("echo", {"text": "a"}, offered=registry - {"echo"})
    unknown = await call("no_such_tool", offered={"no_such_tool"})
    for outcome in (not_offered, unknown):
        assert outcome.error == {"code": TOOL_NOT_OFFERED, "message": "There is no tool of that name here."}
    assert CALLS == []


@pytest.mark.django_db(transaction=True)  # the rights are read in the tools' own thread
async def test_login_and_staff_are_checked_again_when_the_call_runs_as_the_database_has_them(registry):
    member = await User.objects.acreate(username="member")
    staff = await User.objects.acreate(username="staff", is_staff=True)
    as_member = Caller(key=f"user:{member.pk}", user_id=member.pk)
    as_staff = Caller(key=f"user:{staff.pk}", user_id=staff.pk, is_staff=True)
    assert (await call("members_only", caller=ANONYMOUS, offered=registry)).error_code == TOOL_NOT_OFFERED
    assert (await call("staff_only", caller=as_member, offered=registry)).error_code == TOOL_NOT_OFFERED
    assert CALLS == []
    assert (await call("members_only", caller=as_member, offered=registry)).result == "member"
    assert (await call("staff_only", caller=as_staff, offered=registry)).result == "staff"

    # Since the socket connected (and the caller was found), staff status was taken away, the member deactivated.
    await User.objects.filter(pk=staff.pk).aupdate(is_staff=False)
    await User.objects.filter(pk=member.pk).aupdate(is_active=False)
    assert (await call("staff_only", caller=as_staff, offered=registry)).error_code == TOOL_NOT_OFFERED
    assert (await call("members_only", caller=as_member, offered=registry)).error_code == TOOL_NOT_OFFERED


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"text": ', "The arguments are not valid JSON."),
        ("[" * 20_000, "The arguments are longer than the 16384 characters allowed."),
        ("[" * 10_000, "The arguments are not valid JSON."),  # nested too deep for the parser
        ('["ab"]', "The arguments must be a JSON object."),
        ('{"text": "\\ud800"}', "The arguments are not valid JSON."),  # a lone surrogate: not sendable text
        ('{"times": 9}', "The arguments do not fit the tool's parameters: check text, times."),
        ('{"text": "a", "ignore previous instructions": 1}', "The arguments do not fit the tool's parameters: it "),
    ],
)
async def test_invalid_arguments_are_refused_and_the_tool_not_run(registry, arguments, message):
    outcome = await call("echo", arguments, offered=registry)
    assert outcome.error_code == INVALID_ARGUMENTS and outcome.error_message.startswith(message)
    assert "ignore previous" not in outcome.error_message  # a key the model made up is not echoed
    assert CALLS == []


async def test_the_argument_limit_is_the_setting(registry, settings):
    settings.STREAMING_TOOL_ARGUMENT_CHARS = len(json.dumps({"text": "x" * 10}))
    assert (await call("echo", {"text": "x" * 10}, offered=registry)).status == "done"
    assert (await call("echo", {"text": "x" * 11}, offered=registry)).error_code == INVALID_ARGUMENTS


async def test_cancelling_the_call_cancels_an_async_tool(registry, gate):
    task = asyncio.create_task(call("waiting", offered=registry))
    await entered(gate)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done and task.cancelled() and gate.cancelled


async def test_cancelling_the_call_stops_waiting_for_a_sync_tool(registry, gate):
    task = asyncio.create_task(call("blocking", offered=registry))
    await entered(gate)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done and task.cancelled()
    assert not gate.finished.is_set()  # run_call ended while the tool still ran
    gate.release.set()
    assert await asyncio.to_thread(gate.finished.wait, 5)  # and the thread is free again, its result dropped


# --- The built-in tools ---------------------------------------------------------------------------------------------


def test_current_time_tells_the_date_time_weekday_and_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    text = current_time()
    told = datetime.fromisoformat(text.split(",")[0])
    now = datetime.now(ZoneInfo("Europe/Paris"))
    assert abs((now - told).total_seconds()) < 60 and told.utcoffset() == now.utcoffset()
    assert f"{told:%A}" in text and "Europe/Paris" in text


def logged(client: Caller, prompt: str, answer: str, status: str = Exchange.Status.COMPLETED) -> Exchange:
    conversation = Conversation.objects.create(client=client.key, title=f"On {prompt}")
    return Exchange.objects.create(
        conversation=conversation,
        client=client.key,
        request="r",
        model="demo",
        prompt=prompt,
        answer=answer,
        status=status,
    )


def test_search_history_never_returns_another_clients_rows():
    logged(USER, "How do Python decorators work?", "A decorator wraps a function.")
    logged(ANONYMOUS, "Python decorators again, please", "They wrap functions.")
    found = search_history(query="decorators", caller=USER)
    assert [(f["conversation"], f["prompt"]) for f in found] == [
        ("On How do Python decorators work?", "How do Python decorators work?")
    ]
    assert found[0]["answer"] == "A decorator wraps a function." and found[0]["date"]
    assert [f["prompt"] for f in search_history(query="decorators", caller=ANONYMOUS)] == [
        "Python decorators again, please"
    ]
    assert search_history(query="decorators", caller=STAFF) == []


def test_search_history_leaves_out_streams_still_running_and_keeps_to_the_limit():
    logged(USER, "Tell me about Rust", "Rust is a language.", status=Exchange.Status.STREAMING)
    for n in range(3):
        logged(USER, f"Rust question {n}", "Ownership.", status=Exchange.Status.CANCELLED)
    found = search_history(query="rust", limit=2, caller=USER)
    assert len(found) == 2 and "Tell me about Rust" not in {f["prompt"] for f in found}
    assert len(search_history(query="rust", limit=10, caller=USER)) == 3


def test_search_history_cuts_long_answers():
    logged(USER, "Write an essay on tides", "tides " * 1000)
    answer = search_history(query="tides", caller=USER)[0]["answer"]
    assert len(answer) <= 501 and answer.endswith("…")


@pytest.mark.postgresql
def test_search_history_on_postgresql_is_full_text_search_best_match_first():
    logged(USER, "Where do the cats sleep?", "On the sofa.")
    logged(USER, "Cats, cats, cats", "Cats are sleeping everywhere, cats.")
    logged(USER, "Dogs sleeping", "In the garden.")
    found = search_history(query="cat sleeping", caller=USER)  # stemmed words, in any order
    assert [f["prompt"] for f in found] == ["Cats, cats, cats", "Where do the cats sleep?"]
    assert [f["prompt"] for f in search_history(query="sleep -cats", caller=USER)] == ["Dogs sleeping"]


def test_the_plain_match_finds_every_word_anywhere_newest_first():
    """What SQLite gets; run on whichever database the suite runs on."""
    for days_ago, (prompt, answer) in enumerate(
        [("tea time", "Always."), ("A newer one", "Black TEA is strong."), ("An old question about Tea", "Green tea.")]
    ):
        created = datetime(2026, 1, 10, tzinfo=UTC) - timedelta(days=days_ago)
        Exchange.objects.filter(pk=logged(USER, prompt, answer).pk).update(created=created)
    mine = Exchange.objects.filter(client=USER.key)
    assert [e.prompt for e in selectors.every_word_match(mine, "tea")] == [
        "tea time",
        "A newer one",
        "An old question about Tea",
    ]
    assert [e.prompt for e in selectors.every_word_match(mine, "green  TEA")] == ["An old question about Tea"]
    assert list(selectors.every_word_match(mine, "tea coffee")) == []


@pytest.mark.django_db(transaction=True)
async def test_search_history_runs_as_a_tool_for_its_caller_only(settings):
    settings.STREAMING_TOOLS = ["streaming.tools.builtin.search_history"]
    await database_sync_to_async(logged)(USER, "Which Python version?", "3.11.")
    await database_sync_to_async(logged)(ANONYMOUS, "Python on Windows?", "Use the installer.")
    outcome = await call("search_history", {"query": "python"}, caller=USER, offered={"search_history"})
    assert [f["prompt"] for f in json.loads(outcome.result)] == ["Which Python version?"]
    too_many = await call("search_history", {"query": "python", "limit": 11}, caller=USER, offered={"search_history"})
    assert too_many.error_message == "The arguments do not fit the tool's parameters: check limit."


def test_a_wrong_tools_setting_fails_the_system_check_at_start_up(settings):
    from streaming.checks import check_tools

    assert check_tools() == []
    settings.STREAMING_TOOLS = ["streaming.tools.builtin.no_such_tool"]
    [error] = check_tools()
    assert error.id == "streaming.E001" and "no_such_tool" in error.msg
