"""The fake provider's background mode (`tests.fake_openai.Background`), with the real SDK: what a relay meets when it
re-attaches to a response after its worker died. The fake is a test's only witness of the provider, so it is held to
the provider's contract: no gap and no repeat across a cut, a generation that goes on with nobody listening, a
cancel that stops it, and the errors OpenAI answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from tests.fake_openai import Background, FakeOpenAI, Script

TOKENS = ["It", " is", " noon", " in", " Paris."]
TERMINAL = {"response.completed", "response.incomplete", "response.failed", "error"}


@pytest.fixture
def fake(fake_openai_server: FakeOpenAI) -> FakeOpenAI:
    fake_openai_server.reset()
    return fake_openai_server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0) as client:
        yield client


async def create(client: openai.AsyncOpenAI, **fields: Any) -> Any:
    """A background request as a relay makes one: stored, streamed."""
    fields = {"background": True, "store": True, "stream": True, **fields}
    return await client.responses.create(model="fake-model", input="What time is it?", **fields)


def text_of(events: list[Any]) -> str:
    return "".join(event.delta for event in events if event.type == "response.output_text.delta")


def only(fake: FakeOpenAI) -> Background:
    (background,) = fake.responses.values()
    return background


async def test_a_background_response_streams_all_its_events_in_order_and_is_stored(fake, client):
    fake.then(Script(tokens=TOKENS))
    events = [event async for event in await create(client)]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert [event.type for event in events[:3]] == ["response.created", "response.queued", "response.in_progress"]
    assert events[0].response.status == "queued" and events[-1].type == "response.completed"
    assert (events[0].response.background, events[0].response.store) == (True, True)
    assert text_of(events) == "It is noon in Paris."
    background = fake.responses[events[0].response.id]
    assert background.finished.is_set() and background.status == "completed"
    assert background.payloads == [event.model_dump(mode="json", exclude_unset=True) for event in events]
    assert fake.requests[0].tokens_sent == len(TOKENS)


async def test_after_a_cut_the_retrieve_gives_exactly_the_events_after_the_last_one_received(fake, client):
    """The POST is cut after two deltas while the generation waits at the fourth: the resumed stream has the stored
    events after the last one received, then the live ones, through the end."""
    script = Script(tokens=TOKENS, drop_after=2, pause_after=3)
    fake.then(script, Script(tokens=["next"]))
    received = []
    with pytest.raises(openai.APIConnectionError):
        async for event in await create(client):
            received.append(event)
    await fake.requests[0].paused.wait()
    background, after = only(fake), received[-1].sequence_number
    stored_last = len(background.events) - 1
    assert stored_last > after, "the generation went on past the cut"
    resumed = []
    async for event in await client.responses.retrieve(background.id, stream=True, starting_after=after):
        resumed.append(event)
        if event.sequence_number == stored_last:
            script.proceed.set()  # the rest is made while this stream listens
    assert [event.sequence_number for event in received + resumed] == list(range(len(background.events)))
    assert text_of(received + resumed) == "It is noon in Paris." and resumed[-1].type == "response.completed"
    retrieve = fake.requests[1]
    assert (retrieve.method, retrieve.query) == ("GET", {"stream": "true", "starting_after": str(after)})
    assert len(fake.scripts) == 1, "a retrieve takes no script"


async def test_a_retrieve_without_starting_after_streams_the_whole_response(fake, client):
    fake.then(Script(tokens=TOKENS))
    events = [event async for event in await create(client)]
    replayed = [event async for event in await client.responses.retrieve(events[0].response.id, stream=True)]
    assert replayed == events


async def test_the_generation_goes_on_with_no_client_attached(fake, client):
    fake.then(Script(tokens=TOKENS, interval=0.01))
    stream = await create(client)
    first = await anext(aiter(stream))
    await stream.close()
    await fake.requests[0].closed.wait()
    background = fake.responses[first.response.id]
    await asyncio.wait_for(background.finished.wait(), 5)
    assert background.status == "completed" and background.steps_done == len(TOKENS)
    response = await client.responses.retrieve(background.id)
    assert (response.status, response.output_text, response.background) == ("completed", "It is noon in Paris.", True)


async def test_a_retrieve_without_stream_answers_the_response_as_it_is_so_far(fake, client):
    """Paused before its second token: the reasoning item is done, the message is not."""
    script = Script(reasoning=["The clock says noon."], tokens=TOKENS, pause_after=2)
    fake.then(script)
    response = await create(client, stream=False)
    assert (response.status, response.background) == ("queued", True)
    await fake.requests[0].paused.wait()
    so_far = await client.responses.retrieve(response.id)
    assert so_far.status == "in_progress" and [item.type for item in so_far.output] == ["reasoning"]
    script.proceed.set()
    await only(fake).finished.wait()
    done = await client.responses.retrieve(response.id)
    assert done.status == "completed" and [item.type for item in done.output] == ["reasoning", "message"]


async def test_a_cancel_stops_the_generation_ends_its_streams_and_is_recorded(fake, client):
    fake.then(Script(tokens=TOKENS, hang_after=2))
    events = []
    async for event in await create(client):  # ends, with no terminal event, once cancelled
        events.append(event)
        if event.type == "response.output_text.delta" and event.delta == " is":  # the last before the hang
            cancelled = await client.responses.cancel(events[0].response.id)
    background = only(fake)
    await asyncio.wait_for(background.cancelled_event.wait(), 5)
    assert cancelled.status == "cancelled" and text_of(events) == "It is"
    assert not {event.type for event in events} & TERMINAL
    assert (background.cancelled, background.status, background.finished.is_set()) == (True, "cancelled", True)
    assert (fake.cancelled, fake.cancel_attempts) == ([background.id], [background.id])
    assert len(background.events) == len(events), "nothing was made after the cancel"
    replayed = [e async for e in await client.responses.retrieve(background.id, stream=True, starting_after=1)]
    assert replayed == events[2:]
    assert (await client.responses.cancel(background.id)).status == "cancelled", "again is no error"
    assert (fake.cancelled, len(fake.cancel_attempts)) == ([background.id], 2)


async def test_cancelling_a_completed_response_is_refused_but_recorded(fake, client):
    fake.then(Script(tokens=TOKENS))
    events = [event async for event in await create(client)]
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.cancel(events[0].response.id)
    assert refused.value.body["message"] == "Cannot cancel a completed response."
    assert refused.value.body["type"] == "invalid_request_error"
    assert (fake.cancelled, fake.cancel_attempts) == ([], [events[0].response.id])
    assert only(fake).status == "completed"


async def test_a_forgotten_response_and_an_unknown_one_are_not_found(fake, client):
    fake.then(Script(tokens=TOKENS))
    events = [event async for event in await create(client)]
    response_id = events[0].response.id
    fake.forget(response_id)
    with pytest.raises(openai.NotFoundError) as missing:
        await client.responses.retrieve(response_id, stream=True, starting_after=3)
    assert missing.value.body["message"] == f"Response with id '{response_id}' not found."
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(response_id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.cancel("resp_unknown")
    assert fake.cancel_attempts == ["resp_unknown"]


async def test_background_without_store_is_refused(fake, client):
    with pytest.raises(openai.BadRequestError) as refused:
        await create(client, store=False)
    assert (refused.value.body["type"], refused.value.body["param"]) == ("invalid_request_error", "background")
    assert fake.responses == {}


async def test_without_background_a_response_is_streamed_as_before_and_not_stored(fake, client):
    fake.then(Script(tokens=TOKENS, drop_after=2))
    received = []
    with pytest.raises(openai.APIConnectionError):
        async for event in await create(client, background=False, store=False):
            received.append(event)
    assert [event.type for event in received[:2]] == ["response.created", "response.in_progress"]
    assert received[0].response.background is False and received[0].response.status == "in_progress"
    assert text_of(received) == "It is" and fake.responses == {}
    fake.then(Script(tokens=TOKENS))
    plain = await client.responses.create(model="fake-model", input="What time is it?", stream=True)
    events = [event async for event in plain]
    assert events[-1].type == "response.completed" and text_of(events) == "It is noon in Paris."
