/**
 * Questions the view asks of the state. Kept apart from the components so the rules (when may a person send?) are
 * written once and tested without rendering anything.
 *
 * @typedef {import('./types.js').ChatState} ChatState
 * @typedef {import('./types.js').Exchange} Exchange
 * @typedef {import('./types.js').ReadyFrame} ReadyFrame
 */

/** Limits to assume when a server's `ready` leaves one out. */
export const DEFAULT_LIMITS = { max_prompt_chars: 32000, max_tokens: 4096, max_streams: 3, max_frame_bytes: 262144 };

/** @param {ReadyFrame|null} ready */
export function limitsOf(ready) {
  return { ...DEFAULT_LIMITS, ...(ready?.limits ?? {}) };
}

/** Exchanges that hold one of the client's stream slots: sent and not yet finished. */
export function runningCount(/** @type {ChatState} */ state) {
  return state.exchanges.filter((exchange) => exchange.status === 'pending' || exchange.status === 'streaming').length;
}

/**
 * The `resume` an exchange needs now, if any: a running stream resumes from the last seq it has and, when it knows
 * it, the last place (`pos`) in the stream's record.
 * @param {Exchange} exchange
 * @returns {{stream: string, after: number, pos?: number}|null}
 */
export function resumeDue(exchange) {
  if (exchange.status !== 'streaming' || !exchange.needsResume || !exchange.stream) return null;
  const due = { stream: exchange.stream, after: exchange.lastSeq };
  return exchange.lastPos === null ? due : { ...due, pos: exchange.lastPos };
}

/**
 * Why the composer cannot take the message, in words for the person, or null when it can: it must not be blank
 * and must fit the size limit. A message taken while it cannot go out yet is queued (see `queueReason`).
 * @param {{ready: ReadyFrame|null, draft: string}} input
 * @returns {string|null}
 */
export function sendBlocker({ ready, draft }) {
  const limits = limitsOf(ready);
  if (draft.trim() === '') return 'Type a message to send.';
  if (draft.length > limits.max_prompt_chars) {
    return `The message is too long (at most ${limits.max_prompt_chars.toLocaleString()} characters).`;
  }
  return null;
}

/**
 * Why a prompt sent now would wait in the queue, or null when it goes out at once. A prompt goes out once the
 * socket said `ready` and nothing is running: no answer streams (a follow-up must see the whole answer it follows)
 * and no prompt waits for its `start` (in a new chat that `start` names the conversation the next prompt joins).
 * Earlier queued prompts go first.
 * @param {{ready: ReadyFrame|null, state: ChatState}} input
 * @returns {string|null}
 */
export function queueReason({ ready, state }) {
  if (!ready) return 'It is sent once connected.';
  const waiting = state.exchanges.some(
    (exchange) => exchange.status === 'pending' || exchange.status === 'streaming' || exchange.status === 'queued',
  );
  return waiting ? 'It is sent when the answer ends.' : null;
}

/**
 * The queued prompt to send now, if any: the oldest one, once nothing runs ahead of it.
 * @param {ChatState} state
 * @returns {Exchange|null}
 */
export function nextQueued(state) {
  const running = state.exchanges.some((exchange) => exchange.status === 'pending' || exchange.status === 'streaming');
  return running ? null : (state.exchanges.find((exchange) => exchange.status === 'queued') ?? null);
}

/** The streams shown that are still running, for Stop and Escape. */
export function streamingExchanges(/** @type {ChatState} */ state) {
  return state.exchanges.filter((exchange) => exchange.status === 'streaming' && exchange.stream !== null);
}

/**
 * Tokens per second of generation: completion tokens (reasoning included) over the time after the first output
 * (the first token when the server does not say when the first output came).
 * @param {Exchange} exchange
 * @returns {number|null} null when a number is missing or the time is zero
 */
export function tokensPerSecond(exchange) {
  const tokens = exchange.usage?.completion_tokens;
  const firstMs = exchange.firstOutputMs ?? exchange.ttftMs;
  if (typeof tokens !== 'number' || exchange.durationMs == null || firstMs == null) return null;
  const seconds = (exchange.durationMs - firstMs) / 1000;
  return seconds > 0 ? tokens / seconds : null;
}

/**
 * A short note on how an answer ended, when that is worth saying.
 * @param {Exchange} exchange
 * @returns {string|null}
 */
export function finishNote(exchange) {
  if (exchange.status === 'cancelled') return 'stopped';
  if (exchange.status === 'interrupted') return 'interrupted (the server stopped before the answer was finished)';
  if (exchange.finishReason === 'length') return 'cut off (max tokens)';
  if (exchange.finishReason === 'content_filter') return 'stopped by the content filter';
  return null;
}
