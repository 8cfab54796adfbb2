import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from './App.jsx';
import { DEFAULT_CONFIG } from './config.js';
import { FakeSocket, readyFrame } from './test/fakeSocket.js';
import { byRole, byTestId, oneByRole, render } from './test/render.jsx';

/**
 * The page end to end inside jsdom: a fake socket plays the server, a stubbed fetch plays the HTTP API.
 */

const config = { ...DEFAULT_CONFIG, models: ['demo'], defaultModel: 'demo', demo: true };
const SAVED = {
  id: '11111111-2222-3333-4444-555555555555',
  title: 'Old chat',
  exchanges: [
    {
      stream: 'old-1',
      prompt: 'Old question',
      answer: 'Old **answer**',
      status: 'completed',
      finish_reason: 'stop',
      model: 'demo',
      ttft_ms: 100,
      duration_ms: 1100,
      usage: { prompt_tokens: 2, completion_tokens: 10, total_tokens: 12 },
      error: null,
      last_seq: 2,
    },
  ],
};

let view;
let fetchMock;

beforeEach(() => {
  FakeSocket.reset();
  sessionStorage.clear();
  window.history.replaceState(null, '', '/');
  fetchMock = vi.fn(async (url) => {
    if (url === '/api/conversations/') {
      return Response.json({
        conversations: [{ id: SAVED.id, title: SAVED.title, updated: new Date().toISOString() }],
      });
    }
    if (url === `/api/conversations/${SAVED.id}/`) return Response.json(SAVED);
    return new Response('{}', { status: 404 });
  });
  vi.stubGlobal('fetch', fetchMock);
});

afterEach(() => {
  view?.unmount();
  view = undefined;
  vi.unstubAllGlobals();
});

/** Lets animation frames, timers and fetches run. */
async function settle(ms = 40) {
  await act(async () => {
    await new Promise((resolve) => setTimeout(resolve, ms));
  });
}

const one = (id) => {
  const found = byTestId(view.container, id);
  expect(found, `one [data-testid=${id}]`).toHaveLength(1);
  return found[0];
};

function type(text) {
  const textarea = one('composer');
  const setValue = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
  act(() => {
    setValue.call(textarea, text);
    textarea.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

function pressEnter(shiftKey = false) {
  act(() => {
    one('composer').dispatchEvent(
      new KeyboardEvent('keydown', { key: 'Enter', shiftKey, bubbles: true, cancelable: true }),
    );
  });
}

async function serve(...frames) {
  act(() => {
    for (const frame of frames) FakeSocket.latest().receive(frame);
  });
  await settle();
}

async function connect(ready = readyFrame()) {
  view = render(<App config={config} createSocket={FakeSocket.create} />);
  expect(one('connection-status').textContent).toBe('connecting');
  act(() => FakeSocket.latest().open());
  await serve(ready);
}

const sent = () => FakeSocket.latest().sent;

describe('the chat page', () => {
  it('shows the connection state and the demo badge', async () => {
    await connect();
    expect(one('connection-status').textContent).toBe('connected');
    expect(one('demo-badge').textContent).toBe('Demo model');
    expect(view.container.textContent).toContain('Set OPENAI_API_KEY to use a real model.');
  });

  it('enables Send for any message it can take, connected or not (one that cannot go yet is queued)', async () => {
    view = render(<App config={config} createSocket={FakeSocket.create} />);
    expect(one('send').disabled).toBe(true); // nothing typed
    type('Hello');
    expect(one('send').disabled).toBe(false); // not connected: it would be queued
    expect(one('composer').getAttribute('aria-describedby')).toBe('composer-hint');
    expect(view.container.querySelector('#composer-hint').textContent).toMatch(/queue it: it is sent once connected/);
    act(() => FakeSocket.latest().open());
    await serve(readyFrame());
    expect(one('send').disabled).toBe(false);
    expect(view.container.querySelector('#composer-hint').textContent).toBe('Enter to send');
    type('   ');
    expect(one('send').disabled).toBe(true);
  });

  it('streams an answer: prompt, deltas with a cursor, then stats', async () => {
    await connect();
    type('Why is the sky blue?');
    pressEnter();
    const prompt = sent()[0];
    expect(prompt).toMatchObject({ type: 'prompt', content: 'Why is the sky blue?' });
    expect(prompt.conversation).toBeUndefined();
    expect(one('composer').value).toBe('');
    await settle();
    expect(one('message-user').textContent).toContain('Why is the sky blue?');

    await serve(
      {
        type: 'start',
        stream: 's-1',
        request: prompt.request,
        conversation: 'c-1',
        model: 'demo',
        demo: true,
        content: prompt.content,
      },
      { type: 'delta', stream: 's-1', seq: 1, text: 'Because of ' },
      { type: 'delta', stream: 's-1', seq: 2, text: '**Rayleigh**' },
    );
    const answer = one('message-assistant');
    expect(answer.dataset.status).toBe('streaming');
    expect(answer.dataset.stream).toBe('s-1');
    expect(one('answer-text').textContent).toBe('Because of Rayleigh');
    expect(one('answer-text').getAttribute('aria-busy')).toBe('true');
    expect(one('answer-text').dataset.streaming).toBe('true');
    expect(one('stop')).toBeTruthy();

    await serve(
      { type: 'delta', stream: 's-1', seq: 3, text: ' scattering.' },
      {
        type: 'done',
        stream: 's-1',
        seq: 3,
        finish_reason: 'stop',
        usage: { prompt_tokens: 12, completion_tokens: 180, total_tokens: 192 },
        ttft_ms: 230,
        duration_ms: 4230,
      },
    );
    expect(one('message-assistant').dataset.status).toBe('completed');
    expect(one('answer-text').getAttribute('aria-busy')).toBe('false');
    expect(byTestId(view.container, 'stop')).toHaveLength(0);
    const stats = one('answer-stats').textContent;
    expect(stats).toContain('230 ms to first token');
    expect(stats).toContain('4.23 s total');
    expect(stats).toContain('180 / 192 tokens');
    expect(stats).toContain('45.0 tokens/s');
    expect(view.container.querySelector('[role="status"]').textContent).toBe('Answer finished.');

    // The next prompt continues the conversation.
    type('And at sunset?');
    pressEnter();
    expect(sent()[1]).toMatchObject({ content: 'And at sunset?', conversation: 'c-1' });
  });

  it('says while an answer streams that the server is overloaded, and not once it has ended', async () => {
    await connect();
    type('Hello');
    pressEnter();
    const { request } = sent()[0];
    const message = 'The server is overloaded, so this answer may arrive late.';
    await serve(
      { type: 'start', stream: 's-1', request, conversation: 'c-1', content: 'Hello' },
      { type: 'busy', stream: 's-1', lag_ms: 420, message },
      { type: 'delta', stream: 's-1', seq: 1, text: 'Hi' },
    );
    expect(one('busy-note').textContent).toBe(message);
    expect(one('answer-text').textContent).toBe('Hi');

    await serve({ type: 'done', stream: 's-1', seq: 1, finish_reason: 'stop', usage: null, ttft_ms: 5, duration_ms: 9 });
    expect(byTestId(view.container, 'busy-note')).toHaveLength(0);
  });

  it('Shift+Enter does not send', async () => {
    await connect();
    type('line one');
    pressEnter(true);
    expect(sent()).toEqual([]);
  });

  it('Stop cancels the stream and keeps the partial answer, marked stopped', async () => {
    await connect();
    type('Tell me a long story');
    pressEnter();
    const { request } = sent()[0];
    await serve(
      { type: 'start', stream: 's-1', request, conversation: 'c-1', content: 'Tell me a long story' },
      { type: 'delta', stream: 's-1', seq: 1, text: 'Once upon' },
    );
    act(() => one('stop').click());
    expect(sent()[1]).toEqual({ type: 'cancel', stream: 's-1' });
    await serve({
      type: 'done',
      stream: 's-1',
      seq: 1,
      finish_reason: 'cancelled',
      usage: null,
      ttft_ms: 50,
      duration_ms: 400,
    });
    expect(one('message-assistant').dataset.status).toBe('cancelled');
    expect(one('answer-text').textContent).toBe('Once upon');
    expect(one('message-assistant').textContent).toContain('stopped');
  });

  it('shows a stream error under the answer, and Retry asks again, as a new version of the answer', async () => {
    await connect();
    type('Hi');
    pressEnter();
    const { request } = sent()[0];
    await serve(
      { type: 'start', stream: 's-1', request, conversation: 'c-1', content: 'Hi' },
      {
        type: 'error',
        stream: 's-1',
        code: 'rate_limited',
        message: 'The model provider is rate limiting requests.',
        retryable: true,
      },
    );
    expect(one('message-assistant').dataset.status).toBe('failed');
    expect(one('error').textContent).toContain('rate limiting');
    act(() => one('retry').click());
    expect(sent()[1]).toMatchObject({ type: 'prompt', content: 'Hi', conversation: 'c-1', regenerate: 's-1' });
    expect(sent()[1].request).not.toBe(request);
  });

  it('shows a refused prompt near the composer, keeps its text, and Retry re-sends it', async () => {
    await connect();
    type('Hi');
    pressEnter();
    const { request } = sent()[0];
    await serve({
      type: 'error',
      request,
      code: 'too_many_streams',
      message: 'Too many answers at once.',
      retryable: true,
    });
    const notice = one('error');
    expect(view.container.querySelector('.composer-area').contains(notice)).toBe(true);
    expect(one('message-user').textContent).toContain('Hi');
    act(() => one('retry').click());
    expect(sent()[1]).toMatchObject({ type: 'prompt', content: 'Hi' });
    await settle();
    expect(byTestId(view.container, 'error')).toHaveLength(0);
  });

  it('shows a prompt sent from another tab', async () => {
    await connect();
    await serve(
      { type: 'start', stream: 's-9', request: 'r-elsewhere', conversation: 'c-2', content: 'From the other tab' },
      { type: 'delta', stream: 's-9', seq: 1, text: 'Hello' },
    );
    expect(one('message-user').textContent).toContain('From the other tab');
    expect(one('answer-text').textContent).toBe('Hello');
  });

  it('keeps what was typed when the socket is gone: queued, shown, and sent once it is back', async () => {
    await connect();
    type('Important words');
    act(() => FakeSocket.latest().drop());
    await settle();
    expect(one('connection-status').textContent).toBe('reconnecting');
    pressEnter();
    expect(one('composer').value).toBe('');
    expect(one('message-user').textContent).toContain('Important words');
    expect(one('queued-note').textContent).toMatch(/waiting for the connection/);

    act(() => window.dispatchEvent(new Event('online')));
    act(() => FakeSocket.latest().open());
    await serve(readyFrame());
    const prompts = FakeSocket.made.flatMap((socket) => socket.sent).filter((frame) => frame.type === 'prompt');
    expect(prompts).toHaveLength(1);
    expect(prompts[0]).toMatchObject({ content: 'Important words' });
    expect(byTestId(view.container, 'queued-note')).toHaveLength(0);
  });

  it('lists conversations and opens one', async () => {
    await connect();
    await settle();
    const item = one('conversation-item');
    expect(item.textContent).toContain('Old chat');
    act(() => {
      window.location.hash = SAVED.id;
    });
    await settle();
    expect(one('message-user').textContent).toContain('Old question');
    expect(one('answer-text').textContent).toBe('Old answer');
    expect(one('answer-stats').textContent).toContain('10 / 12 tokens');
    expect(item.getAttribute('aria-current')).toBe('page');

    type('Follow-up');
    pressEnter();
    expect(sent()[0]).toMatchObject({ conversation: SAVED.id });

    act(() => one('new-chat').click());
    await settle();
    expect(byTestId(view.container, 'message-user')).toHaveLength(0);
    expect(window.location.hash).toBe('');
  });

  it('offers a model picker when there is more than one model', async () => {
    await connect(readyFrame({ models: ['small', 'large'], model: 'small', demo: false }));
    expect(byTestId(view.container, 'demo-badge')).toHaveLength(0);
    const picker = one('model');
    act(() => {
      picker.value = 'large';
      picker.dispatchEvent(new Event('change', { bubbles: true }));
    });
    type('Hi');
    pressEnter();
    expect(sent()[0]).toMatchObject({ model: 'large' });
  });
});

describe('resuming streams', () => {
  const RUNNING = {
    id: '99999999-8888-7777-6666-555555555555',
    title: 'Running chat',
    exchanges: [
      {
        stream: 'run-1',
        prompt: 'Tell me more',
        // The API shows a running answer as empty, at seq 0, until it ends.
        answer: '',
        status: 'streaming',
        finish_reason: null,
        model: 'demo',
        ttft_ms: null,
        duration_ms: null,
        usage: null,
        error: null,
        last_seq: 0,
      },
    ],
  };
  const STORAGE_KEY = 'streaming-chat.streams';
  const resumes = (socket = FakeSocket.latest()) => socket.sent.filter((frame) => frame.type === 'resume');

  /** Sends a prompt and serves its start; returns the stream id. */
  async function startAnswer(stream = 's-1') {
    type('Why is the sky blue?');
    pressEnter();
    const { request } = sent().find((frame) => frame.type === 'prompt');
    await serve({ type: 'start', stream, request, conversation: 'c-1', content: 'Why is the sky blue?' });
    return stream;
  }

  async function reconnect(ready = readyFrame()) {
    act(() => FakeSocket.latest().drop());
    await settle();
    act(() => window.dispatchEvent(new Event('online'))); // retry at once instead of after the backoff
    act(() => FakeSocket.latest().open());
    await serve(ready);
  }

  function openRunningConversation() {
    fetchMock.mockImplementation(async (url) => {
      if (url === `/api/conversations/${RUNNING.id}/`) return Response.json(RUNNING);
      return Response.json({ conversations: [] });
    });
    window.history.replaceState(null, '', `/#${RUNNING.id}`);
  }

  it('after a reconnect resumes every answer still streaming from its last seq, and it continues from there', async () => {
    await connect();
    await startAnswer('s-1');
    await serve(
      { type: 'delta', stream: 's-1', seq: 1, text: 'Because of ' },
      { type: 'delta', stream: 's-1', seq: 2, text: 'Rayleigh' },
    );
    const first = FakeSocket.latest();
    expect(resumes(first)).toEqual([]); // nothing to resume on the connection the stream started on

    await reconnect();
    expect(FakeSocket.latest()).not.toBe(first);
    expect(resumes()).toEqual([{ type: 'resume', stream: 's-1', after: 2 }]);

    await serve(
      { type: 'delta', stream: 's-1', seq: 3, text: ' scattering.' },
      { type: 'done', stream: 's-1', seq: 3, finish_reason: 'stop', usage: null, ttft_ms: 10, duration_ms: 90 },
    );
    expect(one('answer-text').textContent).toBe('Because of Rayleigh scattering.');
    expect(one('message-assistant').dataset.status).toBe('completed');
    expect(resumes()).toHaveLength(1);
  });

  it('does not resume answers that had ended before the connection dropped', async () => {
    await connect();
    await startAnswer('s-1');
    await serve(
      { type: 'delta', stream: 's-1', seq: 1, text: 'Done.' },
      { type: 'done', stream: 's-1', seq: 1, finish_reason: 'stop', usage: null, ttft_ms: 10, duration_ms: 90 },
    );
    await reconnect();
    expect(resumes()).toEqual([]);
  });

  it('a delta that comes before the replay after a reconnect leaves a gap that the replay fills, with one resume', async () => {
    await connect();
    await startAnswer('s-1');
    await serve({ type: 'delta', stream: 's-1', seq: 1, text: 'A' });
    act(() => FakeSocket.latest().drop());
    await settle();
    act(() => window.dispatchEvent(new Event('online')));
    act(() => FakeSocket.latest().open());
    await serve(readyFrame(), { type: 'delta', stream: 's-1', seq: 4, text: 'D' });
    expect(resumes()).toEqual([{ type: 'resume', stream: 's-1', after: 1 }]);
    await serve(
      { type: 'delta', stream: 's-1', seq: 2, text: 'B' },
      { type: 'delta', stream: 's-1', seq: 3, text: 'C' },
      { type: 'delta', stream: 's-1', seq: 4, text: 'D' },
      { type: 'delta', stream: 's-1', seq: 5, text: 'E' },
    );
    expect(one('answer-text').textContent).toBe('ABCDE');
    expect(resumes()).toHaveLength(1);
  });

  it('a gap sends exactly one resume from the last contiguous seq, and the replay fills it in order', async () => {
    await connect();
    await startAnswer('s-1');
    await serve(
      { type: 'delta', stream: 's-1', seq: 1, text: 'A' },
      { type: 'delta', stream: 's-1', seq: 3, text: 'C' },
    );
    expect(resumes()).toEqual([{ type: 'resume', stream: 's-1', after: 1 }]);
    await serve(
      { type: 'delta', stream: 's-1', seq: 4, text: 'D' },
      { type: 'delta', stream: 's-1', seq: 5, text: 'E' },
    );
    await serve({
      type: 'done',
      stream: 's-1',
      seq: 6,
      finish_reason: 'stop',
      usage: null,
      ttft_ms: 1,
      duration_ms: 9,
    });
    expect(one('answer-text').textContent).toBe('A');
    expect(one('message-assistant').dataset.status).toBe('streaming'); // the done waits for the missing deltas
    expect(resumes()).toHaveLength(1);

    await serve(...['B', 'C', 'D', 'E', 'F'].map((text, n) => ({ type: 'delta', stream: 's-1', seq: n + 2, text })), {
      type: 'done',
      stream: 's-1',
      seq: 6,
      finish_reason: 'stop',
      usage: null,
      ttft_ms: 1,
      duration_ms: 9,
    });
    expect(one('answer-text').textContent).toBe('ABCDEF');
    expect(one('message-assistant').dataset.status).toBe('completed');
    expect(resumes()).toHaveLength(1);
    expect(fetchMock.mock.calls.filter(([url]) => url === '/api/conversations/c-1/')).toEqual([]);
  });

  it('keeps a streaming answer in sessionStorage, and drops it when it ends', async () => {
    await connect();
    await startAnswer('s-1');
    await serve({ type: 'delta', stream: 's-1', seq: 1, text: 'Half' });
    window.dispatchEvent(new Event('pagehide')); // growing text waits for a timer or for the page to go
    expect(JSON.parse(sessionStorage.getItem(STORAGE_KEY))).toEqual([
      {
        stream: 's-1',
        conversation: 'c-1',
        prompt: 'Why is the sky blue?',
        answer: 'Half',
        lastSeq: 1,
        lastPos: 0,
        parts: [{ kind: 'text', text: 'Half' }],
      },
    ]);
    await serve({
      type: 'done',
      stream: 's-1',
      seq: 1,
      finish_reason: 'stop',
      usage: null,
      ttft_ms: 1,
      duration_ms: 9,
    });
    expect(sessionStorage.getItem(STORAGE_KEY)).toBeNull();
  });

  it('after a reload shows the text it had of a running answer and resumes from its seq', async () => {
    sessionStorage.setItem(
      STORAGE_KEY,
      JSON.stringify([
        { stream: 'run-1', conversation: RUNNING.id, prompt: 'Tell me more', answer: 'So far', lastSeq: 2 },
      ]),
    );
    openRunningConversation();
    await connect();
    await settle();
    expect(one('message-user').textContent).toContain('Tell me more');
    expect(one('answer-text').textContent).toBe('So far');
    expect(one('message-assistant').dataset.status).toBe('streaming');
    expect(resumes()).toEqual([{ type: 'resume', stream: 'run-1', after: 2 }]);

    // Should a later delta come before the replay, it is dropped and asks for nothing more; the replay fills in.
    await serve({ type: 'delta', stream: 'run-1', seq: 5, text: ' more' });
    await serve(
      { type: 'delta', stream: 'run-1', seq: 3, text: ', and' },
      { type: 'delta', stream: 'run-1', seq: 4, text: ' then' },
      { type: 'delta', stream: 'run-1', seq: 5, text: ' more' },
      { type: 'done', stream: 'run-1', seq: 5, finish_reason: 'stop', usage: null, ttft_ms: 1, duration_ms: 9 },
    );
    expect(one('answer-text').textContent).toBe('So far, and then more');
    expect(one('message-assistant').dataset.status).toBe('completed');
    expect(resumes()).toHaveLength(1);
    expect(sessionStorage.getItem(STORAGE_KEY)).toBeNull();
  });

  it('after a reload waits for the connection before resuming', async () => {
    sessionStorage.setItem(
      STORAGE_KEY,
      JSON.stringify([
        { stream: 'run-1', conversation: RUNNING.id, prompt: 'Tell me more', answer: 'So far', lastSeq: 2 },
      ]),
    );
    openRunningConversation();
    view = render(<App config={config} createSocket={FakeSocket.create} />);
    await settle();
    expect(one('answer-text').textContent).toBe('So far');
    act(() => FakeSocket.latest().open());
    await settle();
    expect(resumes()).toEqual([]);
    await serve(readyFrame());
    expect(resumes()).toEqual([{ type: 'resume', stream: 'run-1', after: 2 }]);
  });

  it('opened with nothing kept (another tab or browser), a running answer resumes from the start', async () => {
    openRunningConversation();
    await connect();
    await settle();
    expect(one('answer-text').textContent).toBe('');
    expect(resumes()).toEqual([{ type: 'resume', stream: 'run-1', after: 0 }]);
    await serve(
      { type: 'delta', stream: 'run-1', seq: 1, text: 'All' },
      { type: 'delta', stream: 'run-1', seq: 2, text: ' of it' },
    );
    expect(one('answer-text').textContent).toBe('All of it');
  });
});

describe('protocol 2: thinking and tool calls', () => {
  const ready2 = readyFrame({ protocol: 2, tools: [{ name: 'current_time', description: 'The time.' }] });

  async function ask(prompt = 'What time is it?') {
    type(prompt);
    pressEnter();
    const { request } = sent().find((frame) => frame.type === 'prompt');
    await serve({ type: 'start', stream: 's-1', request, conversation: 'c-1', content: prompt });
  }

  it('streams the thinking, closes it when a tool call begins, shows the call to its result, then the answer', async () => {
    await connect(ready2);
    await ask();
    await serve(
      { type: 'reasoning', stream: 's-1', pos: 1, text: 'The user wants' },
      { type: 'reasoning', stream: 's-1', pos: 2, text: ' the time.' },
    );
    const thinking = oneByRole(view.container, 'button', { name: 'Thinking' });
    expect(thinking.getAttribute('aria-expanded')).toBe('true');
    expect(oneByRole(view.container, 'group', { name: 'Thinking' }).textContent).toContain('The user wants the time.');

    await serve(
      { type: 'tool_call', stream: 's-1', pos: 3, call: 'call_1', name: 'current_time' },
      { type: 'tool_arguments', stream: 's-1', pos: 4, call: 'call_1', text: '{}' },
      { type: 'tool_running', stream: 's-1', pos: 5, call: 'call_1' },
    );
    expect(thinking.getAttribute('aria-expanded')).toBe('false');
    expect(thinking.textContent).toMatch(/^Thought for \d/);
    const card = oneByRole(view.container, 'group', { name: 'Tool call current_time' });
    expect(card.dataset.status).toBe('running');

    await serve(
      {
        type: 'tool_result',
        stream: 's-1',
        pos: 6,
        call: 'call_1',
        status: 'done',
        result: '2026-03-01 12:00 UTC',
        error: null,
        duration_ms: 2,
      },
      { type: 'delta', stream: 's-1', pos: 7, seq: 1, text: 'It is noon.' },
      {
        type: 'done',
        stream: 's-1',
        seq: 1,
        finish_reason: 'stop',
        usage: null,
        ttft_ms: 900,
        first_output_ms: 120,
        duration_ms: 1000,
      },
    );
    expect(card.dataset.status).toBe('done');
    expect(one('answer-text').textContent).toBe('It is noon.');
    expect(one('message-assistant').dataset.status).toBe('completed');
    expect(one('answer-stats').textContent).toContain('120 ms to first output · 900 ms to first token');
  });

  it('after a reconnect resumes from its last pos, and ignores what the replay repeats', async () => {
    await connect(ready2);
    await ask();
    await serve(
      { type: 'reasoning', stream: 's-1', pos: 1, text: 'Hm' },
      { type: 'tool_call', stream: 's-1', pos: 2, call: 'call_1', name: 'current_time' },
    );
    act(() => FakeSocket.latest().drop());
    await settle();
    act(() => window.dispatchEvent(new Event('online')));
    act(() => FakeSocket.latest().open());
    await serve(ready2);
    expect(FakeSocket.latest().sent.filter((frame) => frame.type === 'resume')).toEqual([
      { type: 'resume', stream: 's-1', after: 0, pos: 2 },
    ]);
    await serve(
      { type: 'tool_call', stream: 's-1', pos: 2, call: 'call_1', name: 'current_time' },
      { type: 'tool_arguments', stream: 's-1', pos: 3, call: 'call_1', text: '{}' },
      { type: 'done', stream: 's-1', seq: 0, finish_reason: 'cancelled', usage: null, ttft_ms: null, duration_ms: 5 },
    );
    expect(byTestId(view.container, 'tool-call')).toHaveLength(1);
    expect(one('tool-call').dataset.status).toBe('stopped');
    expect(one('tool-arguments').textContent).toBe('{}');
  });
});

describe('sending while it cannot go yet, stopping, phones, login, copy', () => {
  const prompts = () =>
    FakeSocket.made.flatMap((socket) => socket.sent).filter((frame) => frame.type === 'prompt');
  const hint = () => view.container.querySelector('#composer-hint').textContent;
  const doneFrame = (stream, seq) => ({
    type: 'done',
    stream,
    seq,
    finish_reason: 'stop',
    usage: null,
    ttft_ms: 5,
    duration_ms: 50,
  });

  function pressKey(key, target = one('composer')) {
    act(() => {
      target.dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true, cancelable: true }));
    });
  }

  it('Enter while connecting takes the prompt, shows it pending, and sends it once when the socket is ready', async () => {
    view = render(<App config={config} createSocket={FakeSocket.create} />);
    type('Hello early');
    pressEnter();
    expect(one('composer').value).toBe('');
    expect(one('message-user').textContent).toContain('Hello early');
    expect(one('message-user').dataset.status).toBe('queued');
    expect(one('queued-note').textContent).toMatch(/sent once connected/);

    act(() => FakeSocket.latest().open());
    await settle();
    expect(prompts()).toEqual([]); // open, but no ready yet
    await serve(readyFrame());
    expect(prompts()).toHaveLength(1);
    expect(prompts()[0]).toMatchObject({ content: 'Hello early' });
    expect(prompts()[0].conversation).toBeUndefined();
    await settle();
    expect(byTestId(view.container, 'queued-note')).toHaveLength(0);

    await serve({ type: 'start', stream: 's-1', request: prompts()[0].request, conversation: 'c-1' });
    expect(one('message-assistant').dataset.status).toBe('streaming');
    expect(byTestId(view.container, 'message-user')).toHaveLength(1);
    await serve(readyFrame()); // a second ready (or any re-render) sends nothing again
    expect(prompts()).toHaveLength(1);
  });

  it('a follow-up typed while an answer streams is queued under it and sent, once, when it ends', async () => {
    await connect();
    type('First');
    pressEnter();
    const first = prompts()[0];
    await serve(
      { type: 'start', stream: 's-1', request: first.request, conversation: 'c-1', content: 'First' },
      { type: 'delta', stream: 's-1', seq: 1, text: 'Part one' },
    );
    type('Follow-up');
    expect(hint()).toMatch(/Enter to queue it: it is sent when the answer ends/);
    pressEnter();
    expect(prompts()).toHaveLength(1);
    const users = byTestId(view.container, 'message-user');
    expect(users.map((user) => user.textContent)).toEqual([expect.stringContaining('First'), expect.stringContaining('Follow-up')]);
    expect(one('queued-note').textContent).toMatch(/queued: sent when the answer above ends/);
    expect(users[1].closest('li').previousElementSibling.contains(one('message-assistant'))).toBe(true);

    await serve({ type: 'delta', stream: 's-1', seq: 2, text: ' and two.' }, doneFrame('s-1', 2));
    expect(prompts()).toHaveLength(2);
    expect(prompts()[1]).toMatchObject({ content: 'Follow-up', conversation: 'c-1', parent: 's-1' });
    await serve({ type: 'start', stream: 's-2', request: prompts()[1].request, conversation: 'c-1' });
    await serve(doneFrame('s-2', 0));
    expect(prompts()).toHaveLength(2);
    expect(byTestId(view.container, 'message-assistant').map((answer) => answer.dataset.status)).toEqual([
      'completed',
      'completed',
    ]);
  });

  it('the first prompt of a new chat and a second one typed before its start go into one conversation', async () => {
    await connect();
    type('One');
    pressEnter();
    type('Two');
    pressEnter();
    expect(prompts()).toHaveLength(1);
    await serve({ type: 'start', stream: 's-1', request: prompts()[0].request, conversation: 'c-9' });
    expect(prompts()).toHaveLength(1);
    await serve(doneFrame('s-1', 0));
    expect(prompts()[1]).toMatchObject({ content: 'Two', conversation: 'c-9' });
  });

  it('Stop takes the place of Send while an answer streams, and Escape stops it too', async () => {
    await connect();
    type('Long story');
    pressEnter();
    expect(oneByRole(view.container, 'button', { name: 'Send' })).toBeTruthy();
    await serve({ type: 'start', stream: 's-1', request: prompts()[0].request, conversation: 'c-1' });
    const bar = view.container.querySelector('.composer-bar');
    const stopButton = oneByRole(view.container, 'button', { name: 'Stop' });
    expect(bar.lastElementChild).toBe(stopButton);
    expect(byTestId(view.container, 'send')).toHaveLength(0);
    expect(one('message-assistant').querySelector('button[aria-label="Stop"]')).toBeNull();
    // With a follow-up typed, Send comes back just before Stop, which stays where it was.
    type('More');
    expect(bar.lastElementChild).toBe(oneByRole(view.container, 'button', { name: 'Stop' }));
    expect(oneByRole(view.container, 'button', { name: 'Send' }).nextElementSibling).toBe(bar.lastElementChild);

    pressKey('Escape', document.body);
    expect(FakeSocket.latest().sent.filter((frame) => frame.type === 'cancel')).toEqual([
      { type: 'cancel', stream: 's-1' },
    ]);
    expect(oneByRole(view.container, 'button', { name: 'Stop' }).disabled).toBe(true);
    pressKey('Escape', document.body); // once is enough
    expect(FakeSocket.latest().sent.filter((frame) => frame.type === 'cancel')).toHaveLength(1);

    await serve({ ...doneFrame('s-1', 0), finish_reason: 'cancelled' });
    expect(byRole(view.container, 'button', { name: 'Stop' })).toHaveLength(0);
    pressKey('Escape', document.body);
    expect(FakeSocket.latest().sent.filter((frame) => frame.type === 'cancel')).toHaveLength(1);
  });

  it('the Stop button stops the answer', async () => {
    await connect();
    type('Long story');
    pressEnter();
    await serve({ type: 'start', stream: 's-1', request: prompts()[0].request, conversation: 'c-1' });
    act(() => oneByRole(view.container, 'button', { name: 'Stop' }).click());
    expect(FakeSocket.latest().sent.at(-1)).toEqual({ type: 'cancel', stream: 's-1' });
  });

  describe('on a touch screen without hover', () => {
    let queries;
    beforeEach(() => {
      queries = [];
      vi.stubGlobal('matchMedia', (query) => {
        queries.push(query);
        return {
          matches: query === '(pointer: coarse) and (hover: none)',
          addEventListener() {},
          removeEventListener() {},
        };
      });
    });

    it('leaves Enter alone (a new line) and sends with the Send button', async () => {
      await connect();
      expect(one('composer').getAttribute('enterkeyhint')).toBe('enter');
      type('line one');
      pressEnter();
      expect(prompts()).toEqual([]);
      expect(one('composer').value).toBe('line one');
      expect(hint()).toBe('Tap Send to send');
      act(() => oneByRole(view.container, 'button', { name: 'Send' }).click());
      expect(prompts()).toHaveLength(1);
      expect(prompts()[0]).toMatchObject({ content: 'line one' });
    });
  });

  it('on a desktop Enter sends and the keyboard says so', async () => {
    await connect();
    expect(one('composer').getAttribute('enterkeyhint')).toBe('send');
    type('Hi');
    pressEnter();
    expect(prompts()).toHaveLength(1);
  });

  it('a login that has gone (close 4401) shows one notice with a Log in link back here, and stops reconnecting', async () => {
    const loginUrl = '/accounts/login/?next=/';
    view = render(<App config={{ ...config, loginUrl }} createSocket={FakeSocket.create} />);
    act(() => FakeSocket.latest().open());
    await serve(readyFrame());
    window.history.replaceState(null, '', '/#11111111-2222-3333-4444-555555555555');
    act(() => {
      FakeSocket.latest().receive({ type: 'error', code: 'not_allowed', message: 'Log in to chat.', retryable: false });
      FakeSocket.latest().drop(4401);
    });
    await settle(1500);
    expect(FakeSocket.made).toHaveLength(1);
    expect(one('connection-status').textContent).toBe('logged out');
    expect(byTestId(view.container, 'error')).toHaveLength(0);
    const notice = one('login-notice');
    expect(notice.textContent).toMatch(/no longer logged in/);
    const link = one('login-link');
    expect(link.textContent).toBe('Log in');
    const href = new URL(link.getAttribute('href'), 'http://x');
    expect(href.pathname).toBe('/accounts/login/');
    expect(href.searchParams.get('next')).toBe('/#11111111-2222-3333-4444-555555555555');
  });

  it('a worker restarting (close 4012) reconnects at once and resumes the answer', async () => {
    await connect();
    type('Go');
    pressEnter();
    await serve(
      { type: 'start', stream: 's-1', request: prompts()[0].request, conversation: 'c-1' },
      { type: 'delta', stream: 's-1', seq: 1, text: 'So far' },
    );
    act(() => FakeSocket.latest().drop(4012));
    await settle(300); // the restart spread is at most 250 ms; a backoff would wait longer
    expect(FakeSocket.made).toHaveLength(2);
    act(() => FakeSocket.latest().open());
    await serve(readyFrame());
    expect(FakeSocket.latest().sent).toEqual([{ type: 'resume', stream: 's-1', after: 1 }]);
  });

  it('after a reload a failed answer keeps its Retry, which sends the same prompt again', async () => {
    const failed = {
      ...SAVED,
      exchanges: [
        {
          ...SAVED.exchanges[0],
          prompt: 'Flaky question',
          answer: 'Half an',
          status: 'failed',
          finish_reason: null,
          error: { code: 'upstream_unavailable', message: 'The model provider could not be reached.' },
        },
      ],
    };
    fetchMock.mockImplementation(async (url) =>
      url === `/api/conversations/${SAVED.id}/` ? Response.json(failed) : Response.json({ conversations: [] }),
    );
    window.history.replaceState(null, '', `/#${SAVED.id}`);
    await connect();
    await settle();
    expect(one('message-assistant').dataset.status).toBe('failed');
    expect(one('error').textContent).toContain('could not be reached');
    const retryButton = oneByRole(view.container, 'button', { name: 'Retry' });
    expect(retryButton.disabled).toBe(false);
    act(() => retryButton.click());
    expect(prompts()).toEqual([
      expect.objectContaining({ type: 'prompt', content: 'Flaky question', conversation: SAVED.id, regenerate: 'old-1' }),
    ]);
  });

  it('copies a whole answer as its markdown, and a person\'s message, saying Copied', async () => {
    const writeText = vi.fn(async () => {});
    vi.stubGlobal('navigator', { ...navigator, clipboard: { writeText } });
    vi.stubGlobal('isSecureContext', true);
    await connect();
    type('Question');
    pressEnter();
    await serve(
      { type: 'start', stream: 's-1', request: prompts()[0].request, conversation: 'c-1' },
      { type: 'delta', stream: 's-1', seq: 1, text: '**Bold** and `code`' },
    );
    // No Copy for an answer still being written.
    expect(byRole(one('message-assistant'), 'button', { name: 'Copy' })).toHaveLength(0);
    await serve(doneFrame('s-1', 1));

    const copyAnswer = oneByRole(one('message-assistant'), 'button', { name: 'Copy' });
    await act(async () => copyAnswer.click());
    expect(writeText).toHaveBeenLastCalledWith('**Bold** and `code`');
    expect(copyAnswer.dataset.label).toBe('Copied');
    expect(copyAnswer.textContent).toBe(''); // the message's text stays what was said

    const copyPrompt = oneByRole(one('message-user'), 'button', { name: 'Copy' });
    await act(async () => copyPrompt.click());
    expect(writeText).toHaveBeenLastCalledWith('Question');
    expect(copyPrompt.getAttribute('aria-label')).toBe('Copied');
    await settle(2100);
    expect(copyPrompt.getAttribute('aria-label')).toBe('Copy');
  });
});

describe('versions: regenerate, edit, and the switch between them', () => {
  const TREE = {
    ...SAVED,
    exchanges: [
      { ...SAVED.exchanges[0], stream: 'e-1', parent: null, prompt: 'First question', answer: 'First answer' },
      { ...SAVED.exchanges[0], stream: 'e-2', parent: 'e-1', prompt: 'Second question', answer: 'Second answer' },
    ],
  };
  const prompts = () => sent().filter((frame) => frame.type === 'prompt');
  const users = () => byTestId(view.container, 'message-user').map((message) => message.querySelector('.bubble')?.textContent);
  const answers = () => byTestId(view.container, 'answer-text').map((answer) => answer.textContent);
  const button = (name, within = view.container) => oneByRole(within, 'button', { name });
  const done = (stream) => ({ type: 'done', stream, seq: 1, finish_reason: 'stop', usage: null, ttft_ms: 5, duration_ms: 9 });

  async function openTree() {
    fetchMock.mockImplementation(async (url) =>
      url === `/api/conversations/${TREE.id}/` ? Response.json(TREE) : Response.json({ conversations: [] }),
    );
    window.history.replaceState(null, '', `/#${TREE.id}`);
    await connect();
    await settle();
  }

  it('Regenerate asks the question again and shows the new answer as version 2 / 2; the switch shows the first', async () => {
    await openTree();
    const last = byTestId(view.container, 'message-assistant')[1];
    act(() => button('Regenerate', last).click());

    expect(prompts()).toEqual([
      expect.objectContaining({ content: 'Second question', conversation: TREE.id, regenerate: 'e-2' }),
    ]);
    await serve(
      { type: 'start', stream: 'e-3', request: prompts()[0].request, conversation: TREE.id, parent: 'e-1', content: 'Second question' },
      { type: 'delta', stream: 'e-3', seq: 1, text: 'Another answer' },
      done('e-3'),
    );
    expect(users()).toEqual(['First question', 'Second question']);
    expect(answers()).toEqual(['First answer', 'Another answer']);
    const counts = byTestId(view.container, 'version-count').map((count) => count.textContent);
    expect(counts).toEqual(['2 / 2Version 2 of 2']);

    act(() => button('Previous version').click());
    expect(answers()).toEqual(['First answer', 'Second answer']);
    expect(button('Previous version').disabled).toBe(true);
    act(() => button('Next version').click());
    expect(answers()).toEqual(['First answer', 'Another answer']);
  });

  it('Edit sends the new question from there: the later turns stay in the older version', async () => {
    await openTree();
    const first = byTestId(view.container, 'message-user')[0];
    act(() => button('Edit', first).click());
    const box = oneByRole(view.container, 'textbox', { name: 'Edit your message' });
    const setValue = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
    act(() => {
      setValue.call(box, 'First question, better');
      box.dispatchEvent(new Event('input', { bubbles: true }));
    });
    act(() => button('Send', first).click());

    expect(prompts()).toEqual([expect.objectContaining({ content: 'First question, better', edit: 'e-1' })]);
    expect(users()).toEqual(['First question, better']); // shown at once, pending
    await serve(
      { type: 'start', stream: 'e-3', request: prompts()[0].request, conversation: TREE.id, parent: null, content: 'First question, better' },
      { type: 'delta', stream: 'e-3', seq: 1, text: 'Better answer' },
      done('e-3'),
    );
    expect(answers()).toEqual(['Better answer']);

    act(() => button('Previous version').click());
    expect(users()).toEqual(['First question', 'Second question']);
    // A prompt now follows the version shown.
    type('Third question');
    pressEnter();
    expect(prompts()[1]).toMatchObject({ content: 'Third question', parent: 'e-2' });
  });

  it('on a touch screen Enter in the edit box is a new line, and Send sends', async () => {
    vi.stubGlobal('matchMedia', (query) => ({
      matches: query === '(pointer: coarse) and (hover: none)',
      addEventListener() {},
      removeEventListener() {},
    }));
    await openTree();
    const first = byTestId(view.container, 'message-user')[0];
    act(() => button('Edit', first).click());
    const box = oneByRole(view.container, 'textbox', { name: 'Edit your message' });
    act(() => {
      box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
    });
    expect(prompts()).toEqual([]);
    act(() => button('Send', first).click());
    expect(prompts()).toEqual([expect.objectContaining({ content: 'First question', edit: 'e-1' })]);
  });

  it('Escape or Cancel gives the edit up, and nothing is sent', async () => {
    await openTree();
    const first = byTestId(view.container, 'message-user')[0];
    act(() => button('Edit', first).click());
    act(() => button('Cancel', first).click());
    expect(users()).toEqual(['First question', 'Second question']);
    expect(prompts()).toEqual([]);
  });

  it('follows a version another tab made: its start says where it goes, and it is shown', async () => {
    await openTree();
    await serve(
      { type: 'start', stream: 'e-9', request: 'other-tab', conversation: TREE.id, parent: null, content: 'Edited elsewhere' },
      { type: 'delta', stream: 'e-9', seq: 1, text: 'Answer there' },
    );
    expect(users()).toEqual(['Edited elsewhere']);
    expect(byTestId(view.container, 'version-count').map((count) => count.textContent)).toEqual(['2 / 2Version 2 of 2']);
  });

  it('Regenerate and Edit wait while an answer runs', async () => {
    await openTree();
    type('Third question');
    pressEnter();
    await serve({ type: 'start', stream: 'e-3', request: prompts()[0].request, conversation: TREE.id, parent: 'e-2', content: 'Third question' });
    const ended = byTestId(view.container, 'message-assistant')[0];
    expect(button('Regenerate', ended).disabled).toBe(true);
    expect(button('Edit', byTestId(view.container, 'message-user')[0]).disabled).toBe(true);
  });
});
