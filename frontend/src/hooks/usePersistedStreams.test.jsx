import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { newExchange } from '../state/chatReducer.js';
import { renderHook } from '../test/render.jsx';
import {
  PERSIST_EVERY_MS,
  readPersistedStreams,
  updatedStreams,
  usePersistedStreams,
} from './usePersistedStreams.js';

const KEY = 'streaming-chat.streams';
const running = (fields = {}) =>
  newExchange({
    key: 's-1',
    stream: 's-1',
    conversation: 'c-1',
    prompt: 'Why?',
    status: 'streaming',
    answer: 'Because',
    lastSeq: 2,
    ...fields,
  });
const stored = () => JSON.parse(sessionStorage.getItem(KEY) ?? 'null');

beforeEach(() => sessionStorage.clear());
afterEach(() => vi.useRealTimers());

describe('usePersistedStreams', () => {
  it('keeps only streaming answers, with what a reload needs, and drops each when it ends', () => {
    vi.useFakeTimers();
    const hook = renderHook(({ exchanges }) => usePersistedStreams(exchanges), {
      exchanges: [running(), newExchange({ key: 'p', status: 'pending' })],
    });
    expect(stored()).toEqual([
      {
        stream: 's-1',
        conversation: 'c-1',
        prompt: 'Why?',
        answer: 'Because',
        lastSeq: 2,
        lastPos: 0,
        parts: [],
      },
    ]);
    hook.rerender({ exchanges: [running({ answer: 'Because of', lastSeq: 3 })] });
    vi.advanceTimersByTime(PERSIST_EVERY_MS);
    expect(stored()[0]).toMatchObject({ answer: 'Because of', lastSeq: 3 });
    hook.rerender({ exchanges: [running({ status: 'completed', answer: 'Because of it.', lastSeq: 4 })] });
    expect(sessionStorage.getItem(KEY)).toBeNull();
    hook.unmount();
  });

  it('writes a growing answer on a timer, not on every frame, and at once when the page goes away', () => {
    vi.useFakeTimers();
    const setItem = vi.spyOn(Storage.prototype, 'setItem');
    const hook = renderHook(({ exchanges }) => usePersistedStreams(exchanges), { exchanges: [running()] });
    expect(setItem).toHaveBeenCalledTimes(1); // a new stream is written at once
    for (let seq = 3; seq < 63; seq += 1) {
      hook.rerender({ exchanges: [running({ answer: `Because ${'x'.repeat(seq)}`, lastSeq: seq })] });
    }
    expect(setItem).toHaveBeenCalledTimes(1);
    expect(stored()[0].lastSeq).toBe(2);
    vi.advanceTimersByTime(PERSIST_EVERY_MS);
    expect(setItem).toHaveBeenCalledTimes(2);
    expect(stored()[0].lastSeq).toBe(62);

    hook.rerender({ exchanges: [running({ answer: 'Because of this', lastSeq: 63 })] });
    window.dispatchEvent(new Event('pagehide')); // a reload: what is waiting is written before the page goes
    expect(stored()[0]).toMatchObject({ answer: 'Because of this', lastSeq: 63 });
    hook.rerender({ exchanges: [running({ answer: 'Because of this and', lastSeq: 64 })] });
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
    delete document.visibilityState;
    expect(stored()[0].lastSeq).toBe(64);
    expect(setItem).toHaveBeenCalledTimes(4);
    setItem.mockRestore();
    hook.unmount();
  });

  it('hands over what an earlier page of this tab kept, and does not drop it before its conversation opens', () => {
    sessionStorage.setItem(
      KEY,
      JSON.stringify([{ stream: 's-9', conversation: 'c-9', prompt: 'q', answer: 'Hal', lastSeq: 1 }]),
    );
    const hook = renderHook(({ exchanges }) => usePersistedStreams(exchanges), { exchanges: [] });
    expect(hook.result.current()).toEqual([
      { stream: 's-9', conversation: 'c-9', prompt: 'q', answer: 'Hal', lastSeq: 1 },
    ]);
    act(() => hook.rerender({ exchanges: [running()] }));
    expect(stored().map((entry) => entry.stream)).toEqual(['s-9', 's-1']);
    hook.unmount();
  });
});

describe('updatedStreams', () => {
  it('keeps the parts and the place in the record, without the clock readings of this page', () => {
    const parts = [
      { kind: 'reasoning', text: 'Hm.', startedAt: 1234.5, durationMs: 800 },
      { kind: 'text', text: 'Because' },
    ];
    const [entry] = updatedStreams([], [running({ parts, lastPos: 5 })]);
    expect(entry).toMatchObject({
      lastPos: 5,
      parts: [
        { kind: 'reasoning', text: 'Hm.', durationMs: 800 },
        { kind: 'text', text: 'Because' },
      ],
    });
    expect(entry.parts[0]).not.toHaveProperty('startedAt');
  });

  it('updates an entry when only its place moved (reasoning or a tool call came)', () => {
    const entries = updatedStreams([], [running({ lastPos: 3 })]);
    expect(updatedStreams(entries, [running({ lastPos: 4 })])[0].lastPos).toBe(4);
  });

  it('returns the same entries when nothing changed', () => {
    const entries = updatedStreams([], [running()]);
    expect(updatedStreams(entries, [running()])).toBe(entries);
    expect(updatedStreams(entries, [])).toBe(entries);
  });

  it('keeps at most ten, the most recently updated', () => {
    let entries = [];
    for (let n = 0; n < 12; n += 1) entries = updatedStreams(entries, [running({ stream: `s-${n}` })]);
    expect(entries.map((entry) => entry.stream)).toEqual(Array.from({ length: 10 }, (_, n) => `s-${n + 2}`));
  });
});

describe('readPersistedStreams', () => {
  it('reads nothing from junk', () => {
    sessionStorage.setItem(KEY, '{not json');
    expect(readPersistedStreams()).toEqual([]);
    sessionStorage.setItem(
      KEY,
      JSON.stringify([{ stream: 's', answer: 'x', lastSeq: -1 }, 'x', { stream: 's', answer: 'y', lastSeq: 1 }]),
    );
    expect(readPersistedStreams()).toEqual([{ stream: 's', answer: 'y', lastSeq: 1 }]);
  });
});
