import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeSocket, readyFrame } from '../test/fakeSocket.js';
import { renderHook } from '../test/render.jsx';
import { parseFrame, useChatSocket } from './useChatSocket.js';

const URL = 'ws://test/ws/chat/';
/** Jitter pinned to its middle, so delays are exactly 3/4 of each backoff step. */
const middle = () => 0.5;

let hook;
let frames;
let disconnects;

function mount() {
  frames = [];
  disconnects = 0;
  hook = renderHook(useChatSocket, {
    url: URL,
    createSocket: FakeSocket.create,
    random: middle,
    onFrame: (frame) => frames.push(frame),
    onDisconnect: () => {
      disconnects += 1;
    },
  });
  return hook.result;
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.reset();
});

afterEach(() => {
  hook?.unmount();
  vi.useRealTimers();
});

describe('useChatSocket', () => {
  it('starts connecting to the given address', () => {
    const result = mount();
    expect(result.current.status).toBe('connecting');
    expect(result.current.ready).toBeNull();
    expect(FakeSocket.made.map((socket) => socket.url)).toEqual([URL]);
  });

  it('is connected once open, and ready once the server says so', () => {
    const result = mount();
    act(() => FakeSocket.latest().open());
    expect(result.current.status).toBe('connected');
    expect(result.current.ready).toBeNull();
    act(() => FakeSocket.latest().receive(readyFrame()));
    expect(result.current.ready).toMatchObject({ model: 'demo', limits: { max_streams: 3 } });
  });

  it('hands every parsed frame to onFrame and skips what is not a frame', () => {
    mount();
    act(() => {
      FakeSocket.latest().open();
      FakeSocket.latest().receive(readyFrame());
      FakeSocket.latest().receive('not json');
      FakeSocket.latest().receive('[1,2]');
      FakeSocket.latest().receive({ type: 'delta', stream: 's', seq: 1, text: 'x' });
    });
    expect(frames.map((frame) => frame.type)).toEqual(['ready', 'delta']);
  });

  it('sends frames as JSON only while a socket is open', () => {
    const result = mount();
    expect(result.current.send({ type: 'prompt' })).toBe(false);
    act(() => FakeSocket.latest().open());
    expect(result.current.send({ type: 'cancel', stream: 's-1' })).toBe(true);
    expect(FakeSocket.latest().sent).toEqual([{ type: 'cancel', stream: 's-1' }]);
  });

  it('reconnects after a drop with exponential backoff', () => {
    const result = mount();
    act(() => FakeSocket.latest().open());

    act(() => FakeSocket.latest().drop());
    expect(result.current.status).toBe('reconnecting');
    expect(disconnects).toBe(1);
    expect(result.current.send({ type: 'prompt' })).toBe(false);

    // Each failed attempt waits twice as long: 375, 750, 1500 ms with the jitter pinned to its middle.
    for (const delay of [375, 750, 1500]) {
      const before = FakeSocket.made.length;
      act(() => vi.advanceTimersByTime(delay - 1));
      expect(FakeSocket.made).toHaveLength(before);
      act(() => vi.advanceTimersByTime(1));
      expect(FakeSocket.made).toHaveLength(before + 1);
      act(() => FakeSocket.latest().drop());
    }
    expect(result.current.status).toBe('reconnecting');
  });

  it('reconnects at once when the server closes with 4012, restarting', () => {
    mount();
    act(() => {
      FakeSocket.latest().open();
      FakeSocket.latest().receive(readyFrame());
    });

    act(() => FakeSocket.latest().drop(4012));

    // 125 ms: the restart spread with the jitter pinned to its middle, not the 375 ms of a first backoff step.
    act(() => vi.advanceTimersByTime(124));
    expect(FakeSocket.made).toHaveLength(1);
    act(() => vi.advanceTimersByTime(1));
    expect(FakeSocket.made).toHaveLength(2);
  });

  it('stops reconnecting when the server closes with 4403, this user may not chat, and says so', () => {
    hook = renderHook(useChatSocket, { url: URL, createSocket: FakeSocket.create, random: middle, onFrame: () => {} });
    act(() => FakeSocket.latest().open());

    act(() => FakeSocket.latest().drop(4403));

    expect(hook.result.current.status).toBe('notAllowed');
    act(() => vi.advanceTimersByTime(60_000));
    expect(FakeSocket.made).toHaveLength(1);
  });

  it('stops reconnecting when the server closes with 4401, login required, and says so', () => {
    const closes = [];
    hook = renderHook(useChatSocket, {
      url: URL,
      createSocket: FakeSocket.create,
      random: middle,
      onFrame: () => {},
      onDisconnect: (close) => closes.push(close),
    });
    act(() => FakeSocket.latest().open());

    act(() => FakeSocket.latest().drop(4401));

    expect(hook.result.current.status).toBe('loginRequired');
    expect(hook.result.current.ready).toBeNull();
    expect(closes).toEqual([{ code: 4401 }]);
    act(() => vi.advanceTimersByTime(60_000));
    act(() => window.dispatchEvent(new Event('online')));
    expect(FakeSocket.made).toHaveLength(1);
    expect(hook.result.current.status).toBe('loginRequired');
  });

  it('caps the wait between attempts', () => {
    mount();
    act(() => FakeSocket.latest().drop());
    for (let attempt = 0; attempt < 12; attempt += 1) {
      act(() => vi.advanceTimersByTime(15000));
      act(() => FakeSocket.latest().drop());
    }
    const before = FakeSocket.made.length;
    act(() => vi.advanceTimersByTime(11250)); // 3/4 of the 15 s cap
    expect(FakeSocket.made).toHaveLength(before + 1);
  });

  it('starts the backoff over once a new connection says ready', () => {
    const result = mount();
    act(() => FakeSocket.latest().drop());
    act(() => vi.advanceTimersByTime(375));
    act(() => FakeSocket.latest().drop());
    act(() => vi.advanceTimersByTime(750));
    act(() => {
      FakeSocket.latest().open();
      FakeSocket.latest().receive(readyFrame());
    });
    expect(result.current.status).toBe('connected');

    act(() => FakeSocket.latest().drop());
    expect(result.current.ready).toBeNull();
    const before = FakeSocket.made.length;
    act(() => vi.advanceTimersByTime(375));
    expect(FakeSocket.made).toHaveLength(before + 1);
  });

  it('retries at once when the browser comes back online', () => {
    mount();
    act(() => FakeSocket.latest().drop());
    const before = FakeSocket.made.length;
    act(() => window.dispatchEvent(new Event('online')));
    expect(FakeSocket.made).toHaveLength(before + 1);
  });

  it('retries when the transport cannot even be created', () => {
    let calls = 0;
    hook = renderHook(useChatSocket, {
      url: URL,
      random: middle,
      onFrame: () => {},
      createSocket: (url) => {
        calls += 1;
        if (calls === 1) throw new SyntaxError('bad url');
        return FakeSocket.create(url);
      },
    });
    expect(hook.result.current.status).toBe('reconnecting');
    act(() => vi.advanceTimersByTime(375));
    expect(FakeSocket.made).toHaveLength(1);
  });

  it('closes its socket and stops reconnecting when unmounted', () => {
    mount();
    const socket = FakeSocket.latest();
    act(() => socket.open());
    hook.unmount();
    hook = undefined;
    expect(socket.readyState).toBe(3);
    act(() => vi.advanceTimersByTime(60000));
    expect(FakeSocket.made).toHaveLength(1);
    expect(disconnects).toBe(0);
  });
});

describe('parseFrame', () => {
  it('accepts JSON objects with a string type only', () => {
    expect(parseFrame('{"type":"done","seq":1}')).toEqual({ type: 'done', seq: 1 });
    expect(parseFrame('{"seq":1}')).toBeNull();
    expect(parseFrame('null')).toBeNull();
    expect(parseFrame('{')).toBeNull();
    expect(parseFrame(new ArrayBuffer(2))).toBeNull();
  });
});
