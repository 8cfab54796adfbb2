/**
 * How long to wait before the next reconnect attempt.
 *
 * Exponential so that a server that is down is not hammered, capped so that a person never waits long once it is
 * back, and jittered so that every open tab (and every user after a server restart) does not reconnect in the
 * same instant. "Equal jitter": half of the step is fixed, half is random.
 *
 * @param {number} attempt 0 for the first retry after a drop
 * @param {() => number} random a number in [0, 1); Math.random outside tests
 * @param {{baseMs?: number, maxMs?: number}} [options]
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, random = Math.random, { baseMs = 500, maxMs = 15000 } = {}) {
  const step = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(step / 2 + (random() * step) / 2);
}
