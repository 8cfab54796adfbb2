import { describe, expect, it } from 'vitest';
import { chatReducer, initialChatState, newExchange } from './chatReducer.js';
import {
  finishNote,
  limitsOf,
  nextQueued,
  queueReason,
  resumeDue,
  runningCount,
  sendBlocker,
  streamingExchanges,
  tokensPerSecond,
} from './selectors.js';

const ready = {
  type: 'ready',
  protocol: 1,
  model: 'demo',
  models: ['demo'],
  demo: true,
  limits: { max_streams: 2, max_prompt_chars: 10 },
};

function withExchanges(...statuses) {
  return {
    ...initialChatState(),
    conversation: 'c-1',
    exchanges: statuses.map((status, n) => newExchange({ key: `k${n}`, status })),
  };
}

describe('sendBlocker', () => {
  it('takes a message before the server said ready: it is queued, not refused', () => {
    expect(sendBlocker({ ready: null, draft: 'hi' })).toBeNull();
  });

  it('blocks a blank message', () => {
    expect(sendBlocker({ ready, draft: '  \n ' })).toMatch(/type a message/i);
  });

  it('blocks a message over max_prompt_chars', () => {
    expect(sendBlocker({ ready, draft: 'x'.repeat(11) })).toMatch(/too long/i);
  });

  it('allows a message when everything is in place', () => {
    expect(sendBlocker({ ready, draft: 'hello' })).toBeNull();
  });
});

describe('queueReason and nextQueued', () => {
  it('queues until the server said ready', () => {
    expect(queueReason({ ready: null, state: initialChatState() })).toMatch(/once connected/i);
  });

  it('queues a follow-up while an answer streams or a prompt waits for its start, and behind queued ones', () => {
    for (const status of ['streaming', 'pending', 'queued']) {
      expect(queueReason({ ready, state: withExchanges('completed', status) })).toMatch(/when the answer ends/i);
    }
    expect(queueReason({ ready, state: withExchanges('completed', 'failed', 'cancelled') })).toBeNull();
  });

  it('waits for the first start of a new chat, so the next prompt joins the same conversation', () => {
    const state = chatReducer(initialChatState(), { type: 'promptSent', request: 'r-1', content: 'a' });
    expect(queueReason({ ready, state })).not.toBeNull();
  });

  it('gives the oldest queued prompt once nothing runs', () => {
    expect(nextQueued(withExchanges('streaming', 'queued'))).toBeNull();
    expect(nextQueued(withExchanges('pending', 'queued'))).toBeNull();
    expect(nextQueued(withExchanges('completed', 'queued', 'queued'))?.key).toBe('k1');
    expect(nextQueued(withExchanges('completed'))).toBeNull();
  });

  it('lists the answers Stop stops', () => {
    const state = withExchanges('streaming', 'completed', 'pending');
    state.exchanges[0].stream = 's-0';
    expect(streamingExchanges(state).map((exchange) => exchange.key)).toEqual(['k0']);
  });
});

describe('limits and counts', () => {
  it('fills limits the server left out with the protocol defaults', () => {
    expect(limitsOf({ limits: { max_streams: 1 } })).toMatchObject({ max_streams: 1, max_prompt_chars: 32000 });
    expect(limitsOf(null).max_streams).toBe(3);
  });

  it('counts pending and streaming exchanges as running', () => {
    expect(runningCount(withExchanges('pending', 'streaming', 'completed', 'failed', 'cancelled'))).toBe(2);
  });
});

describe('tokensPerSecond', () => {
  it('divides completion tokens by the time after the first token', () => {
    const exchange = newExchange({ usage: { completion_tokens: 180 }, ttftMs: 230, durationMs: 4230 });
    expect(tokensPerSecond(exchange)).toBeCloseTo(45);
  });

  it('counts from the first output when the model thought first: its reasoning tokens are completion tokens', () => {
    const exchange = newExchange({
      usage: { completion_tokens: 200 },
      firstOutputMs: 200,
      ttftMs: 2200,
      durationMs: 4200,
    });
    expect(tokensPerSecond(exchange)).toBeCloseTo(50);
  });

  it('is null when a number is missing or the time is zero', () => {
    expect(tokensPerSecond(newExchange({ usage: null, ttftMs: 1, durationMs: 2 }))).toBeNull();
    expect(tokensPerSecond(newExchange({ usage: { completion_tokens: 5 }, ttftMs: null, durationMs: 2 }))).toBeNull();
    expect(tokensPerSecond(newExchange({ usage: { completion_tokens: 5 }, ttftMs: 2, durationMs: 2 }))).toBeNull();
  });
});

describe('finishNote', () => {
  it('explains how an answer ended when that matters', () => {
    expect(finishNote(newExchange({ status: 'cancelled', finishReason: 'cancelled' }))).toBe('stopped');
    expect(finishNote(newExchange({ status: 'completed', finishReason: 'length' }))).toBe('cut off (max tokens)');
    expect(finishNote(newExchange({ status: 'completed', finishReason: 'content_filter' }))).toMatch(/content filter/);
    expect(finishNote(newExchange({ status: 'interrupted' }))).toMatch(/interrupted/);
    expect(finishNote(newExchange({ status: 'completed', finishReason: 'stop' }))).toBeNull();
  });
});

describe('resumeDue', () => {
  it('is a resume from the last seq for a running stream that needs one, and nothing otherwise', () => {
    const running = newExchange({ stream: 's-1', status: 'streaming', lastSeq: 4, lastPos: 9, needsResume: true });
    expect(resumeDue(running)).toEqual({ stream: 's-1', after: 4, pos: 9 });
    expect(resumeDue({ ...running, needsResume: false })).toBeNull();
    expect(resumeDue({ ...running, status: 'completed' })).toBeNull();
    expect(resumeDue({ ...running, status: 'pending', stream: null })).toBeNull();
  });

  it('leaves pos out when the place in the record is not known', () => {
    const running = newExchange({ stream: 's-1', status: 'streaming', lastSeq: 4, lastPos: null, needsResume: true });
    expect(resumeDue(running)).toEqual({ stream: 's-1', after: 4 });
  });
});
