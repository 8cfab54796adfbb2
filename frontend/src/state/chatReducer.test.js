import { describe, expect, it } from 'vitest';
import { chatReducer, initialChatState, LOGIN_REQUIRED, newExchange } from './chatReducer.js';

/** Applies actions in order, the way the batcher hands them over. */
function run(...actions) {
  return actions.reduce(chatReducer, initialChatState());
}

const frame = (f) => ({ type: 'frame', frame: f });
const sent = (request, content = 'Why is the sky blue?', conversation = null) => ({
  type: 'promptSent',
  request,
  content,
  conversation,
  model: 'demo',
});
const start = (stream, request, conversation = 'c-1', content = 'Why is the sky blue?') =>
  frame({ type: 'start', stream, request, conversation, model: 'demo', demo: true, content });
const delta = (stream, seq, text) => frame({ type: 'delta', stream, seq, text });
const done = (stream, seq, extra = {}) =>
  frame({
    type: 'done',
    stream,
    seq,
    finish_reason: 'stop',
    usage: { prompt_tokens: 12, completion_tokens: 180, total_tokens: 192 },
    ttft_ms: 230,
    duration_ms: 4120,
    ...extra,
  });

describe('sending a prompt', () => {
  it('shows the prompt at once as a pending exchange', () => {
    const state = run(sent('r-1'));
    expect(state.exchanges).toHaveLength(1);
    expect(state.exchanges[0]).toMatchObject({
      key: 'r-1',
      request: 'r-1',
      prompt: 'Why is the sky blue?',
      status: 'pending',
    });
    expect(state.sentRequests).toEqual(['r-1']);
  });

  it('attaches the start of its own request to the pending exchange', () => {
    const state = run(sent('r-1'), start('s-1', 'r-1'));
    expect(state.exchanges).toHaveLength(1);
    expect(state.exchanges[0]).toMatchObject({ key: 'r-1', stream: 's-1', status: 'streaming', conversation: 'c-1' });
  });

  it('adopts the conversation from the first start, and says the list changed', () => {
    const state = run(sent('r-1'), start('s-1', 'r-1', 'c-9'));
    expect(state.conversation).toBe('c-9');
    expect(state.listVersion).toBe(1);
  });

  it('keeps the conversation for the next prompt (multi-turn)', () => {
    let state = run(sent('r-1'), start('s-1', 'r-1', 'c-9'), delta('s-1', 1, 'Hi'), done('s-1', 1));
    state = chatReducer(state, sent('r-2', 'And at sunset?', state.conversation));
    state = chatReducer(state, start('s-2', 'r-2', 'c-9', 'And at sunset?'));
    expect(state.conversation).toBe('c-9');
    expect(state.exchanges.map((e) => [e.prompt, e.conversation, e.stream])).toEqual([
      ['Why is the sky blue?', 'c-9', 's-1'],
      ['And at sunset?', 'c-9', 's-2'],
    ]);
  });

  it('forgets request ids beyond the last fifty', () => {
    let state = initialChatState();
    for (let n = 0; n < 60; n += 1) state = chatReducer(state, sent(`r-${n}`));
    expect(state.sentRequests).toHaveLength(50);
    expect(state.sentRequests[0]).toBe('r-10');
  });
});

describe('deltas', () => {
  const started = () => run(sent('r-1'), start('s-1', 'r-1'));

  it('append in seq order', () => {
    const state = [delta('s-1', 1, 'The sky'), delta('s-1', 2, ' is'), delta('s-1', 3, ' blue.')].reduce(
      chatReducer,
      started(),
    );
    expect(state.exchanges[0]).toMatchObject({ answer: 'The sky is blue.', lastSeq: 3, gap: null });
  });

  it('ignore a duplicate seq', () => {
    const state = [delta('s-1', 1, 'A'), delta('s-1', 2, 'B'), delta('s-1', 2, 'B'), delta('s-1', 1, 'A')].reduce(
      chatReducer,
      started(),
    );
    expect(state.exchanges[0]).toMatchObject({ answer: 'AB', lastSeq: 2 });
  });

  it('returns the same state object for a duplicate, so nothing re-renders', () => {
    const before = chatReducer(started(), delta('s-1', 1, 'A'));
    expect(chatReducer(before, delta('s-1', 1, 'A'))).toBe(before);
  });

  it('record a gap instead of applying a later seq out of order', () => {
    const state = [delta('s-1', 1, 'A'), delta('s-1', 3, 'C')].reduce(chatReducer, started());
    expect(state.exchanges[0]).toMatchObject({ answer: 'A', lastSeq: 1, gap: { stream: 's-1', after: 1 } });
  });

  it('apply nothing past a gap: later seqs are dropped until the missing one arrives', () => {
    const state = [delta('s-1', 1, 'A'), delta('s-1', 3, 'C'), delta('s-1', 4, 'D')].reduce(chatReducer, started());
    expect(state.exchanges[0]).toMatchObject({ answer: 'A', lastSeq: 1, gap: { stream: 's-1', after: 1 } });
  });

  it('record a gap at 0 when the first delta is not seq 1', () => {
    const state = chatReducer(started(), delta('s-1', 2, 'B'));
    expect(state.exchanges[0].gap).toEqual({ stream: 's-1', after: 0 });
    expect(state.exchanges[0].answer).toBe('');
  });

  it('for an unknown stream are ignored', () => {
    const before = started();
    expect(chatReducer(before, delta('s-other', 1, 'x'))).toBe(before);
  });

  it('after done are ignored', () => {
    const state = [delta('s-1', 1, 'A'), done('s-1', 1), delta('s-1', 2, 'B')].reduce(chatReducer, started());
    expect(state.exchanges[0].answer).toBe('A');
  });

  it('ignore a frame with a missing seq or text', () => {
    const before = started();
    expect(chatReducer(before, frame({ type: 'delta', stream: 's-1', text: 'x' }))).toBe(before);
    expect(chatReducer(before, frame({ type: 'delta', stream: 's-1', seq: 1 }))).toBe(before);
  });
});

describe('busy', () => {
  const started = () => run(sent('r-1'), start('s-1', 'r-1'));
  const busy = (stream) =>
    frame({ type: 'busy', stream, lag_ms: 420, message: 'The server is overloaded, so this answer may arrive late.' });

  it('marks a streaming answer with the server message, and deltas go on', () => {
    const state = [delta('s-1', 1, 'The'), busy('s-1'), delta('s-1', 2, ' sky')].reduce(chatReducer, started());
    expect(state.exchanges[0]).toMatchObject({
      answer: 'The sky',
      lastSeq: 2,
      status: 'streaming',
      busy: 'The server is overloaded, so this answer may arrive late.',
    });
  });

  it('is ignored once the stream has ended, and for an unknown stream', () => {
    const ended = chatReducer(started(), done('s-1', 0));
    expect(chatReducer(ended, busy('s-1'))).toBe(ended);
    expect(chatReducer(started(), busy('s-other'))).toEqual(started());
  });
});

describe('done', () => {
  const answered = () => run(sent('r-1'), start('s-1', 'r-1'), delta('s-1', 1, 'Blue'), delta('s-1', 2, '.'));

  it('completes the exchange with its stats, and asks for a list refresh', () => {
    const before = answered();
    const state = chatReducer(before, done('s-1', 2));
    expect(state.exchanges[0]).toMatchObject({
      status: 'completed',
      finishReason: 'stop',
      usage: { prompt_tokens: 12, completion_tokens: 180, total_tokens: 192 },
      ttftMs: 230,
      durationMs: 4120,
      gap: null,
    });
    expect(state.listVersion).toBe(before.listVersion + 1);
  });

  it('marks a cancelled stream as cancelled and keeps the partial answer', () => {
    const state = [
      { type: 'cancelRequested', stream: 's-1' },
      done('s-1', 2, { finish_reason: 'cancelled', usage: null, ttft_ms: 230, duration_ms: 900 }),
    ].reduce(chatReducer, answered());
    expect(state.exchanges[0]).toMatchObject({
      status: 'cancelled',
      answer: 'Blue.',
      cancelRequested: true,
      usage: null,
    });
  });

  it('keeps finish reasons such as length for the view to explain', () => {
    const state = chatReducer(answered(), done('s-1', 2, { finish_reason: 'length' }));
    expect(state.exchanges[0]).toMatchObject({ status: 'completed', finishReason: 'length' });
  });

  it('whose seq says deltas are missing is held back: a gap asks for a resume, which repeats the done', () => {
    const state = chatReducer(answered(), done('s-1', 4));
    expect(state.exchanges[0]).toMatchObject({
      status: 'streaming',
      gap: { stream: 's-1', after: 2 },
      needsResume: true,
    });
    const replayed = [delta('s-1', 3, ' Really'), delta('s-1', 4, '.'), done('s-1', 4)].reduce(chatReducer, state);
    expect(replayed.exchanges[0]).toMatchObject({ status: 'completed', answer: 'Blue. Really.', gap: null });
  });

  it('during a gap is held back too, and the gap stays as it was', () => {
    const before = chatReducer(answered(), delta('s-1', 4, 'x'));
    expect(chatReducer(before, done('s-1', 6))).toBe(before);
    expect(before.exchanges[0].gap).toEqual({ stream: 's-1', after: 2 });
  });

  it('with no deltas at all (seq 0) completes an empty answer', () => {
    const state = run(sent('r-1'), start('s-1', 'r-1'), done('s-1', 0, { ttft_ms: null }));
    expect(state.exchanges[0]).toMatchObject({ status: 'completed', answer: '', gap: null, ttftMs: null });
  });

  it('a second time changes nothing', () => {
    const once = chatReducer(answered(), done('s-1', 2));
    expect(chatReducer(once, done('s-1', 2, { finish_reason: 'length' }))).toBe(once);
  });
});

describe('errors', () => {
  it('about a stream end it, keeping the partial answer', () => {
    const state = run(
      sent('r-1'),
      start('s-1', 'r-1'),
      delta('s-1', 1, 'Part'),
      frame({ type: 'error', stream: 's-1', code: 'rate_limited', message: 'Slow down.', retryable: true }),
    );
    expect(state.exchanges[0]).toMatchObject({
      status: 'failed',
      answer: 'Part',
      error: { code: 'rate_limited', message: 'Slow down.', retryable: true },
    });
    expect(state.notices).toEqual([]);
  });

  it('about our prompt mark it not sent and add a notice with Retry', () => {
    const state = run(
      sent('r-1'),
      frame({ type: 'error', request: 'r-1', code: 'too_many_streams', message: 'Too many.', retryable: true }),
    );
    expect(state.exchanges[0]).toMatchObject({ status: 'failed', stream: null, prompt: 'Why is the sky blue?' });
    expect(state.notices).toEqual([
      { id: 1, code: 'too_many_streams', message: 'Too many.', retryable: true, exchangeKey: 'r-1' },
    ]);
  });

  it('about a frame without a request add a notice without Retry', () => {
    const state = run(frame({ type: 'error', code: 'bad_request', message: 'Bad frame.', retryable: false }));
    expect(state.notices).toEqual([
      { id: 1, code: 'bad_request', message: 'Bad frame.', retryable: false, exchangeKey: null },
    ]);
  });

  it('not_found for a cancel (no request, no stream) is dropped: the stream had already ended', () => {
    const before = run(sent('r-1'), start('s-1', 'r-1'), done('s-1', 0));
    const after = chatReducer(before, frame({ type: 'error', code: 'not_found', message: 'No such stream.' }));
    expect(after).toBe(before);
  });

  it('not_found for a cancel of a stream still shown as streaming marks it interrupted: its end was missed', () => {
    const state = run(
      sent('r-1'),
      start('s-1', 'r-1'),
      delta('s-1', 1, 'Half'),
      { type: 'cancelRequested', stream: 's-1' },
      frame({ type: 'error', code: 'not_found', message: 'No such stream.' }),
    );
    expect(state.exchanges[0]).toMatchObject({ status: 'interrupted', answer: 'Half' });
    expect(state.notices).toEqual([]);
  });

  it('a retry re-sends the refused prompt as the same exchange and clears its notice', () => {
    let state = run(
      sent('r-1'),
      frame({ type: 'error', request: 'r-1', code: 'too_many_streams', message: 'Too many.', retryable: true }),
    );
    state = chatReducer(state, { type: 'promptResent', key: 'r-1', request: 'r-2' });
    expect(state.exchanges).toHaveLength(1);
    expect(state.exchanges[0]).toMatchObject({ key: 'r-1', request: 'r-2', status: 'pending', error: null });
    expect(state.notices).toEqual([]);
    state = chatReducer(state, start('s-1', 'r-2'));
    expect(state.exchanges[0]).toMatchObject({ key: 'r-1', stream: 's-1', status: 'streaming' });
  });

  it('the same notice about no prompt is shown once, however often the server says it', () => {
    const error = frame({ type: 'error', code: 'not_allowed', message: 'Log in to chat.', retryable: false });
    const state = run(error, error, error);
    expect(state.notices).toHaveLength(1);
    expect(state.notices[0]).toMatchObject({ code: 'not_allowed', message: 'Log in to chat.' });
  });

  it('a login that has gone (close 4401) replaces the not_allowed notice with one login notice', () => {
    const error = frame({ type: 'error', code: 'not_allowed', message: 'Log in to chat.', retryable: false });
    const state = run(
      error,
      { type: 'connectionLost' },
      { type: 'loginRequired' },
      error,
      { type: 'connectionLost' },
      { type: 'loginRequired' },
    );
    expect(state.notices).toEqual([
      { id: 4, code: LOGIN_REQUIRED, message: expect.stringMatching(/log in/i), retryable: false, exchangeKey: null },
    ]);
  });

  it('notices can be dismissed', () => {
    const state = run(frame({ type: 'error', code: 'bad_request', message: 'x' }), { type: 'noticeDismissed', id: 1 });
    expect(state.notices).toEqual([]);
  });
});

describe('start from another tab of the same client', () => {
  it('shows its prompt as a user message in an empty new chat, which then follows that conversation', () => {
    const state = run(start('s-1', 'r-other', 'c-5', 'Hello from tab two'));
    expect(state.conversation).toBe('c-5');
    expect(state.exchanges[0]).toMatchObject({
      key: 's-1',
      request: null,
      stream: 's-1',
      prompt: 'Hello from tab two',
      status: 'streaming',
    });
  });

  it('is appended when it belongs to the open conversation', () => {
    const state = run(sent('r-1'), start('s-1', 'r-1', 'c-5'), start('s-2', 'r-other', 'c-5', 'Second'));
    expect(state.exchanges.map((e) => e.prompt)).toEqual(['Why is the sky blue?', 'Second']);
  });

  it('is left out when it belongs to another conversation', () => {
    const before = run(sent('r-1'), start('s-1', 'r-1', 'c-5'));
    expect(chatReducer(before, start('s-2', 'r-other', 'c-6', 'Elsewhere'))).toBe(before);
  });

  it('does not take over a new chat whose own prompt is still pending', () => {
    const before = run(sent('r-1'));
    expect(chatReducer(before, start('s-2', 'r-other', 'c-6', 'Elsewhere'))).toBe(before);
  });

  it('is not confused with our own prompt the person has since left (New chat)', () => {
    const before = run(sent('r-1'), { type: 'chatCleared' });
    expect(chatReducer(before, start('s-1', 'r-1', 'c-5'))).toBe(before);
  });

  it('ignores a repeated start for a stream it already shows', () => {
    const before = run(start('s-1', 'r-other', 'c-5'));
    expect(chatReducer(before, start('s-1', 'r-other', 'c-5'))).toBe(before);
  });

  it('streams its deltas like our own', () => {
    const state = run(start('s-1', 'r-other', 'c-5'), delta('s-1', 1, 'Hi'), done('s-1', 1));
    expect(state.exchanges[0]).toMatchObject({ answer: 'Hi', status: 'completed' });
  });
});

describe('queued prompts', () => {
  const queued = (request, content = 'And at sunset?') => ({ type: 'promptQueued', request, content, model: 'demo' });

  it('shows a queued prompt at once, after what is running, without an answer yet', () => {
    const state = run(sent('r-1'), start('s-1', 'r-1'), queued('r-2'));
    expect(state.exchanges.map((exchange) => [exchange.key, exchange.status])).toEqual([
      ['r-1', 'streaming'],
      ['r-2', 'queued'],
    ]);
    expect(state.exchanges[1]).toMatchObject({ request: 'r-2', prompt: 'And at sunset?', stream: null });
  });

  it('once sent it waits for its start in the conversation it went into, and the start attaches to it', () => {
    const state = run(
      sent('r-1'),
      start('s-1', 'r-1'),
      queued('r-2'),
      done('s-1', 0),
      { type: 'queuedPromptSent', key: 'r-2', conversation: 'c-1' },
      start('s-2', 'r-2', 'c-1', 'And at sunset?'),
    );
    expect(state.exchanges).toHaveLength(2);
    expect(state.exchanges[1]).toMatchObject({ key: 'r-2', stream: 's-2', status: 'streaming', conversation: 'c-1' });
    expect(state.sentRequests).toEqual(['r-1', 'r-2']);
  });

  it('sending it twice changes nothing the second time', () => {
    const once = run(queued('r-1'), { type: 'queuedPromptSent', key: 'r-1', conversation: null });
    expect(chatReducer(once, { type: 'queuedPromptSent', key: 'r-1', conversation: null })).toBe(once);
  });

  it('a start does not attach to a prompt still queued', () => {
    const state = run(queued('r-1'), start('s-1', 'r-1'));
    expect(state.exchanges[0]).toMatchObject({ status: 'queued', stream: null });
  });

  it('a dropped connection leaves queued prompts queued: they were never sent', () => {
    const state = run(sent('r-1'), start('s-1', 'r-1'), queued('r-2'), { type: 'connectionLost' });
    expect(state.exchanges[1]).toMatchObject({ status: 'queued', error: null });
    expect(state.notices).toEqual([]);
  });
});

describe('connection lost', () => {
  it('marks prompts still waiting for start as not sent, with Retry', () => {
    const state = run(sent('r-1'), { type: 'connectionLost' });
    expect(state.exchanges[0]).toMatchObject({ status: 'failed', error: { code: 'disconnected', retryable: true } });
    expect(state.notices[0]).toMatchObject({ exchangeKey: 'r-1', retryable: true });
  });

  it('marks running streams as needing a resume from what they have: the server keeps them going', () => {
    const state = run(
      sent('r-1'),
      start('s-1', 'r-1'),
      delta('s-1', 1, 'A'),
      { type: 'resumeSent', stream: 's-1', after: 0 },
      { type: 'connectionLost' },
    );
    expect(state.exchanges[0]).toMatchObject({
      status: 'streaming',
      answer: 'A',
      needsResume: true,
      resumedAfter: null,
    });
    expect(state.notices).toEqual([]);
  });

  it('changes nothing when nothing was running', () => {
    const before = run(sent('r-1'), start('s-1', 'r-1'), done('s-1', 0));
    expect(chatReducer(before, { type: 'connectionLost' })).toBe(before);
  });
});

describe('conversations from the API', () => {
  const detail = {
    id: 'c-7',
    title: 'Sky',
    exchanges: [
      {
        stream: 's-1',
        prompt: 'Why blue?',
        answer: 'Rayleigh scattering.',
        status: 'completed',
        finish_reason: 'stop',
        model: 'demo',
        ttft_ms: 100,
        duration_ms: 900,
        usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
        error: null,
        last_seq: 3,
      },
      {
        stream: 's-2',
        prompt: 'And red?',
        answer: 'Long',
        status: 'streaming',
        finish_reason: null,
        model: 'demo',
        ttft_ms: null,
        duration_ms: null,
        usage: null,
        error: null,
        last_seq: 2,
      },
    ],
  };

  it('opening one replaces what is shown with its exchanges, in order', () => {
    const state = run(sent('r-1'), { type: 'conversationLoaded', detail });
    expect(state.conversation).toBe('c-7');
    expect(state.exchanges.map((e) => [e.prompt, e.answer, e.status, e.lastSeq])).toEqual([
      ['Why blue?', 'Rayleigh scattering.', 'completed', 3],
      ['And red?', 'Long', 'streaming', 2],
    ]);
    expect(state.exchanges[0]).toMatchObject({ ttftMs: 100, durationMs: 900, usage: { completion_tokens: 4 } });
  });

  it('an exchange still streaming there continues from its last_seq', () => {
    const state = run(
      { type: 'conversationLoaded', detail },
      delta('s-2', 2, 'Long'),
      delta('s-2', 3, 'er waves'),
      done('s-2', 3),
    );
    expect(state.exchanges[1]).toMatchObject({ answer: 'Longer waves', status: 'completed' });
  });

  it('a saved failure keeps its error, with Retry when its code says trying again may work', () => {
    const failedWith = (code) => ({
      ...detail,
      exchanges: [{ ...detail.exchanges[0], status: 'failed', error: { code, message: 'Oops' } }],
    });
    for (const code of ['rate_limited', 'upstream_unavailable', 'interrupted', 'internal_error']) {
      const state = run({ type: 'conversationLoaded', detail: failedWith(code) });
      expect(state.exchanges[0].error).toEqual({ code, message: 'Oops', retryable: true });
    }
    for (const code of ['upstream_error', 'prompt_too_long', 'time_limit', 'x']) {
      const state = run({ type: 'conversationLoaded', detail: failedWith(code) });
      expect(state.exchanges[0].error).toEqual({ code, message: 'Oops', retryable: false });
    }
  });

  it('New chat clears the conversation but keeps which requests were ours', () => {
    const state = run(sent('r-1'), start('s-1', 'r-1'), { type: 'chatCleared' });
    expect(state.conversation).toBeNull();
    expect(state.exchanges).toEqual([]);
    expect(state.sentRequests).toEqual(['r-1']);
  });
});

describe('resume', () => {
  const started = () => run(sent('r-1'), start('s-1', 'r-1'));
  const resumeSent = (after, stream = 's-1') => ({ type: 'resumeSent', stream, after });

  it('a stream started on this connection needs none', () => {
    expect(run(sent('r-1'), start('s-1', 'r-1'), delta('s-1', 1, 'A')).exchanges[0].needsResume).toBe(false);
  });

  it('a replay of deltas already applied is ignored, and the ones after them continue the answer', () => {
    const before = [delta('s-1', 1, 'The'), delta('s-1', 2, ' sky'), { type: 'connectionLost' }, resumeSent(2)].reduce(
      chatReducer,
      started(),
    );
    // The server replays from `after`; a delta this client already had may come around again.
    const state = [
      delta('s-1', 2, ' sky'),
      delta('s-1', 3, ' is'),
      delta('s-1', 3, ' is'),
      delta('s-1', 4, ' blue'),
    ].reduce(chatReducer, before);
    expect(state.exchanges[0]).toMatchObject({ answer: 'The sky is blue', lastSeq: 4, gap: null, needsResume: false });
  });

  it('the replay after a gap applies in order and fills it; the out-of-order deltas were dropped', () => {
    const gapped = [delta('s-1', 1, 'A'), delta('s-1', 4, 'D'), delta('s-1', 5, 'E')].reduce(chatReducer, started());
    const state = [
      resumeSent(1),
      delta('s-1', 2, 'B'),
      delta('s-1', 3, 'C'),
      delta('s-1', 4, 'D'),
      delta('s-1', 5, 'E'),
      delta('s-1', 6, 'F'),
    ].reduce(chatReducer, gapped);
    expect(state.exchanges[0]).toMatchObject({ answer: 'ABCDEF', lastSeq: 6, gap: null });
  });

  it('a gap asks for one resume, and no more until it is filled', () => {
    let state = [delta('s-1', 1, 'A'), delta('s-1', 3, 'C')].reduce(chatReducer, started());
    expect(state.exchanges[0]).toMatchObject({ needsResume: true, gap: { after: 1 } });
    state = chatReducer(state, resumeSent(1));
    expect(state.exchanges[0]).toMatchObject({ needsResume: false, resumedAfter: 1 });
    state = [delta('s-1', 4, 'D'), done('s-1', 5)].reduce(chatReducer, state);
    expect(state.exchanges[0]).toMatchObject({ needsResume: false, status: 'streaming', gap: { after: 1 } });

    state = [delta('s-1', 2, 'B'), delta('s-1', 3, 'C')].reduce(chatReducer, state);
    expect(state.exchanges[0]).toMatchObject({ answer: 'ABC', gap: null, needsResume: false });
    // A new gap, further on, is another hole: it asks again.
    state = chatReducer(state, delta('s-1', 5, 'E'));
    expect(state.exchanges[0]).toMatchObject({ needsResume: true, gap: { after: 3 } });
  });

  it('a gap right after a reconnect, while its resume is still due, asks only once', () => {
    const state = [delta('s-1', 1, 'A'), { type: 'connectionLost' }, delta('s-1', 7, 'G')].reduce(
      chatReducer,
      started(),
    );
    expect(state.exchanges[0]).toMatchObject({ needsResume: true, gap: { after: 1 } });
    expect(chatReducer(state, resumeSent(1)).exchanges[0].needsResume).toBe(false);
  });

  it('a gap while the resume is on its way (a later delta came first) does not ask again', () => {
    const state = [delta('s-1', 1, 'A'), { type: 'connectionLost' }, resumeSent(1), delta('s-1', 7, 'G')].reduce(
      chatReducer,
      started(),
    );
    expect(state.exchanges[0]).toMatchObject({ needsResume: false, gap: { after: 1 } });
  });

  it('an error ending the stream during a gap is held back; the replay repeats it after the missing deltas', () => {
    const error = frame({
      type: 'error',
      stream: 's-1',
      code: 'upstream_unavailable',
      message: 'Gone.',
      retryable: true,
    });
    let state = [delta('s-1', 1, 'A'), delta('s-1', 3, 'C'), resumeSent(1), error].reduce(chatReducer, started());
    expect(state.exchanges[0]).toMatchObject({ status: 'streaming', answer: 'A' });
    state = [delta('s-1', 2, 'B'), delta('s-1', 3, 'C'), error].reduce(chatReducer, state);
    expect(state.exchanges[0]).toMatchObject({
      status: 'failed',
      answer: 'ABC',
      error: { code: 'upstream_unavailable' },
    });
  });

  it('resumeSent for a stream not shown changes nothing', () => {
    const before = started();
    expect(chatReducer(before, resumeSent(0, 's-other'))).toBe(before);
  });
});

describe('a running answer from the API (a reload mid-stream)', () => {
  const running = {
    stream: 's-2',
    prompt: 'And red?',
    answer: '',
    status: 'streaming',
    finish_reason: null,
    model: 'demo',
    ttft_ms: null,
    duration_ms: null,
    usage: null,
    error: null,
    last_seq: 0,
  };
  const detail = { id: 'c-7', title: 'Sky', exchanges: [running] };
  const kept = { stream: 's-2', conversation: 'c-7', prompt: 'And red?', answer: 'Longer wave', lastSeq: 3 };

  it('shows the text this tab kept of it and resumes from its seq', () => {
    const state = run({ type: 'conversationLoaded', detail, persisted: [kept] });
    expect(state.exchanges[0]).toMatchObject({
      stream: 's-2',
      status: 'streaming',
      answer: 'Longer wave',
      lastSeq: 3,
      needsResume: true,
    });
    const continued = [delta('s-2', 3, 'wave'), delta('s-2', 4, 'lengths'), done('s-2', 4)].reduce(chatReducer, state);
    expect(continued.exchanges[0]).toMatchObject({ answer: 'Longer wavelengths', status: 'completed' });
  });

  it('without anything kept (another tab or browser) resumes from the start', () => {
    const state = run({ type: 'conversationLoaded', detail, persisted: [{ ...kept, stream: 's-other' }] });
    expect(state.exchanges[0]).toMatchObject({ answer: '', lastSeq: 0, needsResume: true });
  });

  it('deltas that come before the replay leave a gap, and need no second resume', () => {
    const state = run(
      { type: 'conversationLoaded', detail, persisted: [kept] },
      { type: 'resumeSent', stream: 's-2', after: 3 },
      delta('s-2', 9, 'x'),
    );
    expect(state.exchanges[0]).toMatchObject({ answer: 'Longer wave', gap: { after: 3 }, needsResume: false });
  });

  it('ignores what was kept of an answer that has ended since', () => {
    const ended = { ...detail, exchanges: [{ ...running, status: 'completed', answer: 'Long.', last_seq: 2 }] };
    const state = run({ type: 'conversationLoaded', detail: ended, persisted: [kept] });
    expect(state.exchanges[0]).toMatchObject({ answer: 'Long.', lastSeq: 2, status: 'completed', needsResume: false });
  });
});

describe('frames the client does not know', () => {
  it('are ignored, as the protocol asks', () => {
    const before = run(sent('r-1'));
    expect(chatReducer(before, frame({ type: 'typing', stream: 's-1' }))).toBe(before);
    expect(chatReducer(before, frame({ type: 'ready', protocol: 1 }))).toBe(before);
    expect(chatReducer(before, frame(null))).toBe(before);
  });
});

describe('batches', () => {
  it('apply their actions in order', () => {
    const state = run({
      type: 'batch',
      actions: [sent('r-1'), start('s-1', 'r-1'), delta('s-1', 1, 'x'), delta('s-1', 2, 'y')],
    });
    expect(state.exchanges[0].answer).toBe('xy');
  });
});

describe('protocol 2: reasoning, tool calls and pos', () => {
  /** A frame action as the app makes it: the frame, and the client's clock when it arrived. */
  const at = (receivedAt, f) => ({ type: 'frame', frame: f, receivedAt });
  const reasoning = (pos, text) => ({ type: 'reasoning', stream: 's-1', pos, text });
  const text = (pos, seq, t) => ({ type: 'delta', stream: 's-1', pos, seq, text: t });
  const toolCall = (pos, call = 'call_1', name = 'current_time') => ({
    type: 'tool_call',
    stream: 's-1',
    pos,
    call,
    name,
  });
  const toolArguments = (pos, t, call = 'call_1') => ({ type: 'tool_arguments', stream: 's-1', pos, call, text: t });
  const toolRunning = (pos, call = 'call_1') => ({ type: 'tool_running', stream: 's-1', pos, call });
  const toolDone = (pos, result, call = 'call_1') => ({
    type: 'tool_result',
    stream: 's-1',
    pos,
    call,
    status: 'done',
    result,
    error: null,
    duration_ms: 12,
  });
  const started = () => run(sent('r-1'), start('s-1', 'r-1'));
  const ACTIONS = new Set(['frame', 'resumeSent', 'connectionLost', 'cancelRequested']);
  /** Applies actions, and frames given bare as the server sends them. */
  const apply = (state, ...items) =>
    items.map((item) => (ACTIONS.has(item.type) ? item : frame(item))).reduce(chatReducer, state);
  const shown = (state) => state.exchanges[0];

  it('merges consecutive reasoning frames into one part, then the answer text follows in its own', () => {
    const state = apply(
      started(),
      at(1000, reasoning(1, 'The user asks')),
      at(1200, reasoning(2, ' about the sky.')),
      at(3500, text(3, 1, 'Because')),
      at(3600, text(4, 2, ' of Rayleigh.')),
    );
    expect(shown(state)).toMatchObject({ answer: 'Because of Rayleigh.', lastSeq: 2, lastPos: 4, gap: null });
    expect(shown(state).parts).toEqual([
      { kind: 'reasoning', text: 'The user asks about the sky.', startedAt: 1000, durationMs: 2500 },
      { kind: 'text', text: 'Because of Rayleigh.' },
    ]);
  });

  it('leaves the thinking time unknown when no clock reading came with the frames', () => {
    const state = apply(started(), reasoning(1, 'Hm.'), text(2, 1, 'Yes.'));
    expect(shown(state).parts[0]).toMatchObject({ kind: 'reasoning', startedAt: null, durationMs: null });
  });

  it('keeps reasoning, text and tool calls in the order they came, round after round', () => {
    const state = apply(
      started(),
      at(0, reasoning(1, 'Need the time.')),
      at(400, text(2, 1, 'Let me look.')),
      at(500, toolCall(3)),
      at(510, toolArguments(4, '{"time')),
      at(520, toolArguments(5, 'zone": "UTC"}')),
      at(600, toolRunning(6)),
      at(700, toolDone(7, '2026-03-01T12:00:00+00:00')),
      at(800, reasoning(8, 'Now answer.')),
      at(1100, text(9, 2, 'It is noon.')),
    );
    expect(shown(state).answer).toBe('Let me look.It is noon.');
    expect(shown(state).parts).toEqual([
      { kind: 'reasoning', text: 'Need the time.', startedAt: 0, durationMs: 400 },
      { kind: 'text', text: 'Let me look.' },
      {
        kind: 'tool',
        call: 'call_1',
        name: 'current_time',
        arguments: '{"timezone": "UTC"}',
        status: 'done',
        result: '2026-03-01T12:00:00+00:00',
        error: null,
        durationMs: 12,
      },
      { kind: 'reasoning', text: 'Now answer.', startedAt: 800, durationMs: 300 },
      { kind: 'text', text: 'It is noon.' },
    ]);
  });

  it('a tool call opens a card that is written, then runs, then fails with its error', () => {
    let state = apply(started(), toolCall(1, 'call_x', 'search_history'));
    expect(shown(state).parts).toEqual([
      {
        kind: 'tool',
        call: 'call_x',
        name: 'search_history',
        arguments: '',
        status: 'writing',
        result: null,
        error: null,
        durationMs: null,
      },
    ]);
    state = apply(state, toolArguments(2, '{"query": "python"}', 'call_x'), toolRunning(3, 'call_x'));
    expect(shown(state).parts[0]).toMatchObject({ arguments: '{"query": "python"}', status: 'running' });
    state = apply(state, {
      type: 'tool_result',
      stream: 's-1',
      pos: 4,
      call: 'call_x',
      status: 'failed',
      result: null,
      error: { code: 'tool_timeout', message: 'The tool took too long.' },
      duration_ms: 10000,
    });
    expect(shown(state).parts[0]).toMatchObject({
      status: 'failed',
      result: null,
      error: { code: 'tool_timeout', message: 'The tool took too long.' },
      durationMs: 10000,
    });
  });

  it('several calls in one round each get their card, and frames find theirs by call id', () => {
    const state = apply(
      started(),
      toolCall(1, 'a', 'current_time'),
      toolCall(2, 'b', 'search_history'),
      toolArguments(3, '{}', 'a'),
      toolArguments(4, '{"query": "x"}', 'b'),
      toolRunning(5, 'a'),
      toolRunning(6, 'b'),
      toolDone(7, 'noon', 'b'),
    );
    expect(shown(state).parts.map((part) => [part.call, part.arguments, part.status])).toEqual([
      ['a', '{}', 'running'],
      ['b', '{"query": "x"}', 'done'],
    ]);
  });

  it('ignores any frame at a pos already applied (a replay after a resume), returning the same state', () => {
    const before = apply(started(), reasoning(1, 'A'), text(2, 1, 'B'), toolCall(3));
    for (const duplicate of [reasoning(1, 'A'), text(2, 1, 'B'), toolCall(3, 'call_2'), toolArguments(2, '{}')]) {
      expect(chatReducer(before, frame(duplicate))).toBe(before);
    }
  });

  it('records a gap when a pos is skipped, applies nothing past it, and the replay fills it in order', () => {
    let state = apply(started(), reasoning(1, 'A'), reasoning(3, 'C'), text(4, 1, 'D'));
    expect(shown(state)).toMatchObject({ lastPos: 1, answer: '', gap: { stream: 's-1', after: 0 }, needsResume: true });
    expect(shown(state).parts).toEqual([{ kind: 'reasoning', text: 'A', startedAt: null, durationMs: null }]);
    state = apply(state, { type: 'resumeSent', stream: 's-1', after: 0, pos: 1 });
    state = apply(state, reasoning(2, 'B'), reasoning(3, 'C'), text(4, 1, 'D'));
    expect(shown(state)).toMatchObject({ lastPos: 4, answer: 'D', gap: null, needsResume: false });
    expect(shown(state).parts.map((part) => part.text)).toEqual(['ABC', 'D']);
  });

  it('a pos gap while a resume from that very place is on its way does not ask again; further on it does', () => {
    let state = apply(started(), reasoning(1, 'A'), { type: 'connectionLost' });
    state = apply(state, { type: 'resumeSent', stream: 's-1', after: 0, pos: 1 }, reasoning(5, 'E'));
    expect(shown(state)).toMatchObject({ gap: { after: 0 }, needsResume: false, resumedPos: 1 });
    state = apply(state, reasoning(2, 'B'), reasoning(7, 'G'));
    expect(shown(state)).toMatchObject({ lastPos: 2, gap: { after: 0 }, needsResume: true });
  });

  it('a frame type it does not know still takes its place, so the frames after it are not a gap', () => {
    const state = apply(started(), { type: 'citation', stream: 's-1', pos: 1, url: 'x' }, text(2, 1, 'Hi'));
    expect(shown(state)).toMatchObject({ lastPos: 2, answer: 'Hi', gap: null });
    expect(shown(state).parts).toEqual([{ kind: 'text', text: 'Hi' }]);
  });

  it('a tool frame it cannot use (unknown call, missing fields) takes its place and changes nothing else', () => {
    const before = apply(started(), toolCall(1));
    const state = apply(
      before,
      toolArguments(2, '{}', 'call_unknown'),
      { type: 'tool_call', stream: 's-1', pos: 3 },
      { type: 'tool_arguments', stream: 's-1', pos: 4, call: 'call_1' },
    );
    expect(shown(state).lastPos).toBe(4);
    expect(shown(state).parts).toBe(shown(before).parts);
  });

  it('a repeated tool_call for a call already shown opens no second card', () => {
    const state = apply(started(), toolCall(1), toolCall(2));
    expect(shown(state).parts).toHaveLength(1);
  });

  it('frames after the end are ignored', () => {
    const ended = apply(started(), text(1, 1, 'Hi'), done('s-1', 1));
    expect(chatReducer(ended, frame(reasoning(2, 'more')))).toBe(ended);
    expect(chatReducer(ended, frame(toolCall(2)))).toBe(ended);
  });

  it('a stream that ends while a call is written or running shows that call stopped; ended calls stay', () => {
    const calls = () =>
      apply(started(), toolCall(1, 'a'), toolRunning(2, 'a'), toolDone(3, 'ok', 'a'), toolCall(4, 'b'));
    const cancelled = apply(calls(), done('s-1', 0, { finish_reason: 'cancelled' }));
    expect(shown(cancelled).parts.map((part) => part.status)).toEqual(['done', 'stopped']);
    const failed = apply(
      apply(calls(), toolRunning(5, 'b')),
      frame({ type: 'error', stream: 's-1', code: 'internal_error', message: 'Oops.', retryable: false }),
    );
    expect(shown(failed)).toMatchObject({ status: 'failed' });
    expect(shown(failed).parts.map((part) => part.status)).toEqual(['done', 'stopped']);
    const interrupted = apply(
      calls(),
      { type: 'cancelRequested', stream: 's-1' },
      frame({ type: 'error', code: 'not_found', message: 'No such stream.' }),
    );
    expect(shown(interrupted)).toMatchObject({ status: 'interrupted' });
    expect(shown(interrupted).parts.map((part) => part.status)).toEqual(['done', 'stopped']);
  });

  it('done keeps first_output_ms, and its numbers time the thinking that opened the answer', () => {
    const state = apply(
      started(),
      at(5000, reasoning(1, 'Hm.')),
      at(5300, text(2, 1, 'Yes.')),
      done('s-1', 1, { first_output_ms: 120, ttft_ms: 900 }),
    );
    expect(shown(state)).toMatchObject({ firstOutputMs: 120, ttftMs: 900, status: 'completed' });
    expect(shown(state).parts[0]).toMatchObject({ kind: 'reasoning', durationMs: 780 });
  });

  it('done leaves the client measure when a tool call came between the thinking and the first word', () => {
    const state = apply(
      started(),
      at(0, reasoning(1, 'Hm.')),
      at(300, toolCall(2)),
      toolDone(3, 'noon'),
      at(900, text(4, 1, 'Noon.')),
      done('s-1', 1, { first_output_ms: 100, ttft_ms: 2000 }),
    );
    expect(shown(state).parts[0]).toMatchObject({ durationMs: 300 });
  });

  it('done whose seq says deltas are missing is held back, as in protocol 1', () => {
    const state = apply(started(), reasoning(1, 'Hm.'), text(2, 1, 'A'), done('s-1', 2));
    expect(shown(state)).toMatchObject({ status: 'streaming', gap: { after: 1 }, needsResume: true });
  });

  it('a delta in its place whose seq was already applied only takes the place', () => {
    const state = started();
    // As if this page had had the text of seq 1 before it knew pos.
    const withText = { ...state, exchanges: state.exchanges.map((e) => ({ ...e, answer: 'A', lastSeq: 1 })) };
    const next = apply(withText, text(1, 1, 'A'), text(2, 2, 'B'));
    expect(shown(next)).toMatchObject({ answer: 'AB', lastSeq: 2, lastPos: 2, gap: null });
  });

  it('without pos (a protocol-1 server) deltas still become the text part, ordered by seq', () => {
    const state = apply(started(), delta('s-1', 1, 'A'), delta('s-1', 3, 'C'), delta('s-1', 2, 'B'));
    expect(shown(state)).toMatchObject({ answer: 'AB', lastPos: 0, gap: null });
    expect(shown(state).parts).toEqual([{ kind: 'text', text: 'AB' }]);
  });

  it('a start with a pos of its own counts as the first place', () => {
    const state = apply(run(sent('r-1')), { ...start('s-1', 'r-1').frame, pos: 1 }, reasoning(2, 'Hm.'));
    expect(shown(state)).toMatchObject({ lastPos: 2, gap: null });
  });
});

describe('protocol 2 conversations from the API', () => {
  const saved = (fields = {}) => ({
    stream: 's-1',
    prompt: 'What time is it?',
    answer: 'Let me look.It is noon.',
    status: 'completed',
    finish_reason: 'stop',
    model: 'demo',
    ttft_ms: 900,
    first_output_ms: 100,
    duration_ms: 3000,
    usage: null,
    error: null,
    last_seq: 2,
    reasoning: 'Need the time.',
    parts: [
      { kind: 'reasoning', text: 'Need the time.' },
      { kind: 'text', text: 'Let me look.' },
      {
        kind: 'tool',
        call: 'call_1',
        name: 'current_time',
        arguments: '{}',
        status: 'done',
        result: 'noon',
        error: null,
        duration_ms: 3,
      },
      { kind: 'text', text: 'It is noon.' },
    ],
    ...fields,
  });
  const load = (...exchanges) => run({ type: 'conversationLoaded', detail: { id: 'c-1', exchanges } });

  it('builds the same parts as the live stream did, timing the opening thinking by the server', () => {
    const exchange = load(saved()).exchanges[0];
    expect(exchange).toMatchObject({ firstOutputMs: 100, ttftMs: 900, answer: 'Let me look.It is noon.' });
    expect(exchange.parts).toEqual([
      { kind: 'reasoning', text: 'Need the time.', startedAt: null, durationMs: 800 },
      { kind: 'text', text: 'Let me look.' },
      {
        kind: 'tool',
        call: 'call_1',
        name: 'current_time',
        arguments: '{}',
        status: 'done',
        result: 'noon',
        error: null,
        durationMs: 3,
      },
      { kind: 'text', text: 'It is noon.' },
    ]);
  });

  it('keeps failed and stopped calls with their errors, and drops parts it does not know', () => {
    const parts = [
      {
        kind: 'tool',
        call: 'c',
        name: 'search_history',
        arguments: 'not json',
        status: 'failed',
        result: null,
        error: { code: 'invalid_arguments', message: 'The arguments are not valid JSON.' },
        duration_ms: 0,
      },
      { kind: 'tool', call: 'd', name: 'current_time', arguments: '', status: 'stopped', result: null, error: null },
      { kind: 'image', url: 'x' },
    ];
    const exchange = load(saved({ parts, answer: '' })).exchanges[0];
    expect(exchange.parts.map((part) => [part.call, part.status, part.error?.code ?? null])).toEqual([
      ['c', 'failed', 'invalid_arguments'],
      ['d', 'stopped', null],
    ]);
  });

  it('from an older server without parts, shows the answer alone', () => {
    const { parts: _parts, reasoning: _reasoning, first_output_ms: _first, ...old } = saved({ answer: 'Noon.' });
    const exchange = load(old).exchanges[0];
    expect(exchange.parts).toEqual([{ kind: 'text', text: 'Noon.' }]);
    expect(exchange.firstOutputMs).toBeNull();
  });

  it('a running answer with nothing shown resumes from place 0; one kept by this tab from its own place', () => {
    const running = saved({ status: 'streaming', answer: '', parts: [], last_seq: 0, ttft_ms: null });
    expect(load(running).exchanges[0]).toMatchObject({ lastPos: 0, needsResume: true });

    const kept = {
      stream: 's-1',
      conversation: 'c-1',
      prompt: 'What time is it?',
      answer: '',
      lastSeq: 0,
      lastPos: 3,
      parts: [
        { kind: 'reasoning', text: 'Need the time.', durationMs: 400 },
        { kind: 'tool', call: 'call_1', name: 'current_time', arguments: '{}', status: 'running' },
      ],
    };
    const state = run({ type: 'conversationLoaded', detail: { id: 'c-1', exchanges: [running] }, persisted: [kept] });
    expect(state.exchanges[0]).toMatchObject({ lastPos: 3, lastSeq: 0, needsResume: true });
    expect(state.exchanges[0].parts.map((part) => [part.kind, part.status ?? null])).toEqual([
      ['reasoning', null],
      ['tool', 'running'],
    ]);
    const continued = [
      frame({ type: 'tool_result', stream: 's-1', pos: 4, call: 'call_1', status: 'done', result: 'noon' }),
      frame({ type: 'delta', stream: 's-1', pos: 5, seq: 1, text: 'Noon.' }),
    ].reduce(chatReducer, state);
    expect(continued.exchanges[0].parts.map((part) => part.kind)).toEqual(['reasoning', 'tool', 'text']);
    expect(continued.exchanges[0].answer).toBe('Noon.');
  });

  it('a running answer shown partly, with no place to resume from, is replayed whole from place 0', () => {
    const running = saved({ status: 'streaming', answer: 'Let me look.', last_seq: 1, ttft_ms: null });
    const exchange = load(running).exchanges[0];
    expect(exchange).toMatchObject({ answer: '', parts: [], lastSeq: 0, lastPos: 0, needsResume: true });
    const placed = load({ ...running, last_pos: 4 }).exchanges[0];
    expect(placed).toMatchObject({ answer: 'Let me look.', lastSeq: 1, lastPos: 4 });
    expect(placed.parts).toHaveLength(4);
  });

  it('what an older page kept (no place) resumes by seq alone, and the next frame gives the place', () => {
    const running = saved({ status: 'streaming', answer: '', parts: [], last_seq: 0 });
    const kept = { stream: 's-1', conversation: 'c-1', prompt: 'q', answer: 'Noo', lastSeq: 2 };
    let state = run({ type: 'conversationLoaded', detail: { id: 'c-1', exchanges: [running] }, persisted: [kept] });
    expect(state.exchanges[0]).toMatchObject({ answer: 'Noo', lastSeq: 2, lastPos: null });
    expect(state.exchanges[0].parts).toEqual([{ kind: 'text', text: 'Noo' }]);
    state = chatReducer(state, frame({ type: 'delta', stream: 's-1', pos: 9, seq: 3, text: 'n.' }));
    expect(state.exchanges[0]).toMatchObject({ answer: 'Noon.', lastPos: 9, gap: null });
  });
});
