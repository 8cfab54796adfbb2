import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.js';

describe('backoffDelay', () => {
  it('doubles with each attempt', () => {
    const fixed = () => 0.5;
    expect([0, 1, 2, 3].map((attempt) => backoffDelay(attempt, fixed))).toEqual([375, 750, 1500, 3000]);
  });

  it('is capped', () => {
    expect(backoffDelay(30, () => 0.999999)).toBe(15000);
    expect(backoffDelay(1000, () => 0)).toBe(7500);
  });

  it('stays between half and all of the step, whatever the jitter', () => {
    expect(backoffDelay(2, () => 0)).toBe(1000);
    expect(backoffDelay(2, () => 0.999999)).toBe(2000);
  });

  it('takes its base and cap from options', () => {
    expect(backoffDelay(3, () => 0, { baseMs: 100, maxMs: 400 })).toBe(200);
  });
});
