/**
 * The two read-only endpoints of the HTTP API. Same origin, so the session cookie authenticates them.
 *
 * @typedef {{id: string, title: string, updated: string}} ConversationSummary
 * @typedef {Object} SavedExchange
 * @property {string} stream
 * @property {string} prompt
 * @property {string} answer
 * @property {'streaming'|'completed'|'cancelled'|'failed'|'interrupted'} status
 * @property {string|null} finish_reason
 * @property {string|null} model
 * @property {number|null} ttft_ms
 * @property {number|null} duration_ms
 * @property {{prompt_tokens: number, completion_tokens: number, total_tokens: number}|null} usage
 * @property {{code: string, message: string}|null} error
 * @property {number} last_seq
 * @property {number|null} [first_output_ms] time to the first output of any kind (protocol 2 servers)
 * @property {string} [reasoning] the model's reasoning, all of it
 * @property {SavedPart[]} [parts] the answer's parts in order; absent from older servers (then `answer` is all)
 * @typedef {{kind: 'reasoning'|'text', text: string}
 *   | {kind: 'tool', call: string, name: string, arguments: string, status: 'done'|'failed'|'stopped',
 *      result: string|null, error: {code: string, message: string}|null, duration_ms: number|null}} SavedPart
 * @typedef {{id: string, title: string, exchanges: SavedExchange[]}} ConversationDetail
 */

/** An HTTP answer that was not 2xx; `status` lets the view tell "gone" (404) from "try again". */
export class ApiError extends Error {
  /** @param {number} status */
  constructor(status) {
    super(`The server answered ${status}.`);
    this.name = 'ApiError';
    this.status = status;
  }
}

/**
 * @param {string} conversationsUrl e.g. "/api/conversations/"
 * @param {{signal?: AbortSignal}} [options]
 * @returns {Promise<ConversationSummary[]>} newest first
 */
export async function fetchConversations(conversationsUrl, { signal } = {}) {
  const body = await getJson(conversationsUrl, signal);
  return Array.isArray(body?.conversations) ? body.conversations : [];
}

/**
 * @param {string} conversationsUrl
 * @param {string} id
 * @param {{signal?: AbortSignal}} [options]
 * @returns {Promise<ConversationDetail>} its exchanges oldest first
 */
export async function fetchConversation(conversationsUrl, id, { signal } = {}) {
  return getJson(`${conversationsUrl}${encodeURIComponent(id)}/`, signal);
}

async function getJson(url, signal) {
  const response = await fetch(url, {
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
    signal,
  });
  if (!response.ok) throw new ApiError(response.status);
  return response.json();
}
