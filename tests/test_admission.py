"""Prompts and ends that arrive together reach the database together: `together.Batches` on its own, then
`services.exchanges_start` and `services.exchanges_finish` on batches, where each prompt is still checked as if it
had come alone, and the number of queries does not grow with the batch (the point of batching: every query of the
database thread waits for the GIL while the event loop is busy)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError, connection, connections
from django.utils import timezone

from streaming import services
from streaming.clients import Client
from streaming.deployment import running
from streaming.deployment.together import Answer, Batches
from streaming.errors import NotFound, StreamingError, TooManyPrompts, TooManyStreams
from streaming.models import Exchange
from streaming.protocol import Prompt
from streaming.relay.ending import Ending
from streaming.relay.transcript import Transcript
from tests.conftest import new_session, open_socket
from tests.conftest import prompt as prompt_frame
from tests.fake_openai import Script
from tests.test_budgets import waiting_for_a_lock

ALICE = Client(key="session:alice")
BOB = Client(key="session:bob")


def prompt(request: object, **fields: object) -> Prompt:
    return Prompt(request=str(request), content=f"Question {request}?", model="m", **fields)


def arrival(client: Client = ALICE, request: str = "r", **fields: object) -> services.Arrival:
    return services.Arrival(client, prompt(request, **fields))


def start(*arrivals: services.Arrival) -> list:
    return services.exchanges_start(arrivals=list(arrivals), demo=False, worker="w")


# -- Batches, alone -----------------------------------------------------------------------------------------------


async def test_what_arrives_while_a_batch_runs_goes_in_the_next_one_and_nothing_waits_when_nothing_runs():
    seen: list[list[int]] = []
    release = asyncio.Event()

    async def run(items: list[int], answer: Answer[int]) -> list[int | Exception]:
        seen.append(items)
        await release.wait()
        return [item * 10 for item in items]

    batches: Batches[int, int] = Batches(run, most=100)
    first = asyncio.create_task(batches.submit(1))
    await asyncio.sleep(0)  # the first batch is under way, alone
    rest = [asyncio.create_task(batches.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    assert seen == [[1]]
    release.set()
    assert [await first, *[await task for task in rest]] == [10, 20, 30, 40]
    assert seen == [[1], [2, 3, 4]]


async def test_a_refusal_answers_its_item_alone_and_a_failed_run_answers_every_item_of_its_batch():
    async def run(items: list[int], answer: Answer[int]) -> list[int | Exception]:
        if 99 in items:
            raise RuntimeError("the database is gone")
        return [StreamingError("no") if item == 2 else item for item in items]

    batches: Batches[int, int] = Batches(run, most=100)
    one, two = await asyncio.gather(batches.submit(1), batches.submit(2), return_exceptions=True)
    assert one == 1 and isinstance(two, StreamingError)
    failed = await asyncio.gather(batches.submit(99), batches.submit(3), return_exceptions=True)
    assert [type(outcome) for outcome in failed] == [RuntimeError, RuntimeError]


async def test_an_item_answered_early_is_not_kept_waiting_for_the_rest_of_its_batch():
    release = asyncio.Event()

    async def run(items: list[int], answer: Answer[int]) -> list[int | Exception]:
        answer(0, items[0] * 10)  # checked: it may go on while the batch is still writing
        await release.wait()
        return [-1] * len(items)  # what a run returns for an item it answered already is not heard

    batches: Batches[int, int] = Batches(run, most=100)
    async with asyncio.timeout(5):  # without the early answer, it would wait for `release`
        assert await batches.submit(1) == 10
    release.set()


async def test_an_item_whose_caller_stopped_waiting_is_still_run_and_a_batch_holds_at_most_its_limit():
    seen: list[list[int]] = []

    async def run(items: list[int], answer: Answer[int]) -> list[int | Exception]:
        seen.append(items)
        await asyncio.sleep(0)
        return items

    batches: Batches[int, int] = Batches(run, most=2)
    gone = asyncio.create_task(batches.submit(1))
    await asyncio.sleep(0)
    gone.cancel()
    assert await asyncio.gather(*(batches.submit(n) for n in (2, 3, 4))) == [2, 3, 4]
    assert seen == [[1], [2, 3], [4]]


# -- the socket ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_frame_is_handled_while_the_database_thread_is_busy():
    """Channels' `dispatch` sends every message to the database thread first, to close stale connections: a prompt
    of a burst would wait behind whatever that thread is doing before it is even read. The consumer's own
    database calls close them in that thread, so the hop is skipped: a frame is answered while the thread is held."""
    socket = await open_socket()
    release = threading.Event()
    holding = asyncio.create_task(database_sync_to_async(release.wait)(10))
    try:
        await socket.send({"type": "nonsense"})  # answered without the database
        error = await socket.receive()
        assert (error["type"], error["code"], holding.done()) == ("error", "bad_request", False)
    finally:
        release.set()
        await holding
        await socket.close()


@pytest.fixture
def held_insert(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """A batch's rows are written (in the database thread) only once this is set, at the latest when the test ends."""
    insert = threading.Event()
    save = services._Batch.save

    def held_save(batch: services._Batch, *, now: object) -> None:
        insert.wait(10)
        save(batch, now=now)

    monkeypatch.setattr(services._Batch, "save", held_save)
    yield insert
    insert.set()


@pytest.mark.django_db(transaction=True)
async def test_an_admitted_prompt_goes_upstream_while_its_row_is_being_written(upstream, held_insert):
    """Its checks have passed: the request does not wait for the insert, which is half a batch's time in a burst."""
    answering = Script(tokens=["Hello", "!"], pause_after=1)
    upstream.then(answering)
    socket = await open_socket()
    try:
        await socket.send(prompt_frame("Hello?"))
        async with asyncio.timeout(5):
            await answering.paused.wait()  # the provider is answering...
        assert not held_insert.is_set()  # ...while the row is still to be written (its insert is held until then)
    finally:
        held_insert.set()
        answering.proceed.set()
    frames = await socket.stream_to_end()
    assert frames[-1]["type"] == "done"
    row = await Exchange.objects.aget(id=frames[-1]["stream"])
    assert row.status == Exchange.Status.COMPLETED and row.answer == "Hello!"
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_the_clients_other_sockets_hear_of_a_stream_once_its_row_is_in_the_log(upstream, held_insert):
    """A socket that learns of a stream must find it in the log, wherever it asks next: a cancel that lands on
    another worker looks the stream up there. The socket that asked gets its `start` at once all the same."""
    answering = Script(tokens=["Hello", "!"], pause_after=1)
    upstream.then(answering)
    session = await database_sync_to_async(new_session)()
    asker, other_tab = await open_socket(session_key=session), await open_socket(session_key=session)
    try:
        await asker.send(prompt_frame("Hello?"))
        start = await asker.receive()
        assert start["type"] == "start"
        async with asyncio.timeout(5):
            await answering.paused.wait()  # the answer has begun, its row still held back
        assert await other_tab.nothing_received()
    finally:
        held_insert.set()
        answering.proceed.set()
    assert await other_tab.receive() == start
    assert await Exchange.objects.filter(id=start["stream"]).aexists()
    await asker.stream_to_end()
    await other_tab.stream_to_end()
    await asker.close()
    await other_tab.close()


@pytest.mark.django_db(transaction=True)
async def test_a_prompt_whose_row_cannot_be_written_is_stopped_and_its_sockets_told(upstream, monkeypatch):
    """The checks passed and the answer began, then the insert failed: the answer is stopped, its request upstream
    closed, and the socket hears the end; nothing is logged, since the database took nothing."""
    upstream.then(Script(tokens=["Hello", "!"], hang_after=1))  # the provider answers until the client closes

    def failing_save(batch: services._Batch, *, now: object) -> None:
        raise OperationalError("the database went away")

    monkeypatch.setattr(services._Batch, "save", failing_save)
    socket = await open_socket()
    await socket.send(prompt_frame("Hello?"))
    frames = await socket.stream_to_end()
    await running.streams_finished()

    start, end = frames[0], frames[-1]
    assert start["type"] == "start" and end["type"] == "error" and end["stream"] == start["stream"]
    assert end["code"] == "internal_error" and "could not record" in end["message"]
    for request in upstream.requests:  # if it got as far as the provider, it was closed there
        async with asyncio.timeout(5):
            await request.closed.wait()
    assert not await Exchange.objects.filter(id=start["stream"]).aexists()
    await socket.close()


# -- exchanges_start and exchanges_finish ------------------------------------------------------------------------


def lock_statements() -> int:
    """PostgreSQL takes the batch's locks in one more statement."""
    return int(connection.vendor == "postgresql")


def insert_statements() -> int:
    """The batch's two inserts, as Django's query log sees them: on PostgreSQL they go through a cursor of psycopg's
    own (`streaming.rows`), which it does not see."""
    return 0 if connection.vendor == "postgresql" else 2


held = threading.Event()  # the first prompt's transaction is open, its streams counted
release = threading.Event()


def holding_instruction(*, client: Client, conversation: uuid.UUID | None) -> str:
    """Called inside the admitting transaction, after the running streams are counted: the first caller holds it."""
    if not held.is_set():
        held.set()
        release.wait(10)
    return "Be brief."


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_workers_admitting_a_clients_last_stream_at_once_admit_one(settings):
    """Without a lock both would count the client's running streams before the other committed, and both would go
    past `STREAMING_MAX_STREAMS`; with it the second waits for the first, then sees its row."""
    settings.STREAMING_MAX_STREAMS = 1
    settings.STREAMING_SYSTEM_INSTRUCTION = "tests.test_admission.holding_instruction"
    held.clear(), release.clear()
    outcomes: dict[str, object] = {}
    done = threading.Event()

    def admit(name: str) -> None:
        try:
            (outcomes[name],) = start(arrival(ALICE, name))
        finally:
            connections.close_all()
            if name == "second":
                done.set()

    first = threading.Thread(target=admit, args=("first",))
    first.start()
    assert held.wait(10)
    second = threading.Thread(target=admit, args=("second",))
    second.start()
    while not done.is_set() and not waiting_for_a_lock():  # waiting, as it should, or done already (no lock)
        done.wait(0.01)
    release.set()
    first.join(10), second.join(10)
    assert isinstance(outcomes["first"], tuple)
    assert isinstance(outcomes["second"], TooManyStreams)


@pytest.mark.django_db
def test_a_batch_of_new_conversations_takes_the_same_few_queries_whatever_its_size(django_assert_num_queries):
    # The running streams, two inserts, the transaction's savepoint and release, and on PostgreSQL the statement that
    # takes every client's lock: no query per prompt. (SQLite
    # takes at most 999 parameters a query: past 29 prompts Django splits the insert of their exchanges.)
    for size in (3, 25):
        with django_assert_num_queries(3 + insert_statements() + lock_statements()):
            outcomes = start(*(arrival(Client(key=f"session:{size}:{n}"), request=str(n)) for n in range(size)))
        assert all(isinstance(outcome, tuple) for outcome in outcomes)
    assert Exchange.objects.count() == 28


@pytest.mark.django_db
def test_budgets_add_the_same_few_queries_to_a_batch_whatever_its_size(settings, django_assert_num_queries):
    settings.STREAMING_PROMPTS_PER_MINUTE, settings.STREAMING_TOKENS_PER_DAY = 1000, 10**9
    # Both limits of every client in one query, and of every anonymous address in another.
    extra = 2 + lock_statements()
    for size in (3, 25):  # under SQLite's limit of parameters, as above
        with django_assert_num_queries(3 + insert_statements() + extra):
            arrivals = [
                services.Arrival(Client(key=f"session:{size}:{n}"), prompt(n), address="a") for n in range(size)
            ]
            outcomes = services.exchanges_start(arrivals=arrivals, demo=False, worker="w")
        assert all(isinstance(outcome, tuple) for outcome in outcomes)


@pytest.mark.django_db
def test_each_prompt_of_a_batch_is_checked_as_if_it_came_alone_and_a_refused_one_leaves_nothing(settings):
    settings.STREAMING_MAX_STREAMS = 2
    outcomes = start(
        arrival(ALICE, "a1"),
        arrival(BOB, "b1"),
        arrival(ALICE, "a2", conversation=uuid.uuid4()),  # not hers: refused alone
        arrival(ALICE, "a3"),
        arrival(ALICE, "a4"),  # her third at once: the batch's earlier two count
    )
    assert [type(outcome) for outcome in outcomes] == [tuple, tuple, NotFound, tuple, TooManyStreams]
    assert sorted(Exchange.objects.values_list("request", flat=True)) == ["a1", "a3", "b1"]


@pytest.mark.django_db
def test_a_budget_counts_the_prompts_of_the_batch_before_it(settings):
    settings.STREAMING_PROMPTS_PER_MINUTE = 2
    outcomes = start(arrival(ALICE, "1"), arrival(ALICE, "2"), arrival(ALICE, "3"), arrival(BOB, "4"))
    assert [type(outcome) for outcome in outcomes] == [tuple, tuple, TooManyPrompts, tuple]
    assert 0 < outcomes[2].retry_after_ms <= 60_000


@pytest.mark.django_db
def test_prompts_of_one_batch_in_one_conversation_follow_each_other():
    (first,) = start(arrival(ALICE, "1"))
    conversation = first[0].conversation_id
    second, third = start(
        arrival(ALICE, "2", conversation=conversation), arrival(ALICE, "3", conversation=conversation)
    )
    assert second[0].parent_id == first[0].id
    assert third[0].parent_id == second[0].id
    # The model is not sent the turns before: they are still streaming, with no answer yet.
    assert third[1] == [{"role": "user", "content": "Question 3?"}]


@pytest.mark.django_db
def test_the_ends_of_a_batch_are_saved_in_one_transaction_and_a_row_that_already_ended_keeps_its_end(
    django_assert_num_queries,
):
    rows = [outcome[0] for outcome in start(*(arrival(Client(key=f"session:{n}"), str(n)) for n in range(20)))]
    Exchange.objects.filter(id=rows[0].id).update(status=Exchange.Status.INTERRUPTED)  # a sweep ended it
    transcript = Transcript()
    transcript.add("delta", "{}", "Hello")
    ending = Ending.of(
        error=None, finish_reason="stop", last_seq=1, duration_ms=5, usage=None, ttft_ms=1, first_output_ms=1
    )
    finishes = [services.Finish(row.id, ending, transcript) for row in rows]
    with django_assert_num_queries(20 + 2):  # an update per row, and the transaction's savepoint and release
        saved = services.exchanges_finish(finishes=finishes)
    assert saved == [False] + [True] * 19
    assert Exchange.objects.get(id=rows[0].id).status == Exchange.Status.INTERRUPTED
    assert set(Exchange.objects.exclude(id=rows[0].id).values_list("status", "answer")) == {("completed", "Hello")}
    assert timezone.now() >= Exchange.objects.get(id=rows[1].id).finished
