import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from './App.jsx';
import { DEFAULT_CONFIG } from './config.js';
import { FakeSocket, readyFrame } from './test/fakeSocket.js';
import { byTestId, render } from './test/render.jsx';

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

  it('only enables Send when a message can really be sent', async () => {
    view = render(<App config={config} createSocket={FakeSocket.create} />);
    type('Hello');
    expect(one('send').disabled).toBe(true); // not connected
    act(() => FakeSocket.latest().open());
    expect(one('send').disabled).toBe(true); // no ready yet
    await serve(readyFrame());
    expect(one('send').disabled).toBe(false);
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

  it('shows a stream error under the answer, and Retry asks again', async () => {
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
    expect(sent()[1]).toMatchObject({ type: 'prompt', content: 'Hi', conversation: 'c-1' });
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

  it('keeps what was typed when the socket is gone', async () => {
    await connect();
    type('Important words');
    act(() => FakeSocket.latest().drop());
    await settle();
    expect(one('connection-status').textContent).toBe('reconnecting');
    expect(one('send').disabled).toBe(true);
    pressEnter();
    expect(one('composer').value).toBe('Important words');
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
