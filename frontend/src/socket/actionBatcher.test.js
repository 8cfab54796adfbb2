import { describe, expect, it, vi } from 'vitest';
import { createActionBatcher } from './actionBatcher.js';

describe('createActionBatcher', () => {
  it('dispatches everything pushed before the next frame as one batch, in order', () => {
    const dispatch = vi.fn();
    let flushLater;
    const batcher = createActionBatcher(dispatch, (flush) => {
      flushLater = flush;
    });
    batcher.push({ type: 'a' });
    batcher.push({ type: 'b' });
    expect(dispatch).not.toHaveBeenCalled();
    flushLater();
    expect(dispatch).toHaveBeenCalledExactlyOnceWith({ type: 'batch', actions: [{ type: 'a' }, { type: 'b' }] });
  });

  it('schedules one flush per frame, however many actions arrive', () => {
    const schedule = vi.fn();
    const batcher = createActionBatcher(vi.fn(), schedule);
    for (let n = 0; n < 100; n += 1) batcher.push({ type: 'delta' });
    expect(schedule).toHaveBeenCalledTimes(1);
  });

  it('can flush at once, and then the scheduled flush has nothing to do', () => {
    const dispatch = vi.fn();
    let flushLater;
    const batcher = createActionBatcher(dispatch, (flush) => {
      flushLater = flush;
    });
    batcher.push({ type: 'a' });
    batcher.flush();
    flushLater();
    expect(dispatch).toHaveBeenCalledTimes(1);
  });
});
