/**
 * The endpoints of the HTTP API. Same origin, so the session cookie authenticates them; a request that changes
 * something also sends the page's CSRF token.
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
 * @property {Feedback|null} [feedback] what the client said of the answer; absent from older servers
 * @typedef {{kind: 'reasoning'|'text', text: string}
 *   | {kind: 'tool', call: string, name: string, arguments: string, status: 'done'|'failed'|'stopped',
 *      result: string|null, error: {code: string, message: string}|null, duration_ms: number|null}} SavedPart
 * @typedef {{rating: 'up'|'down', comment: string}} Feedback
 * @typedef {{id: string, title: string, exchanges: SavedExchange[], settings?: ConversationSettings}}
 *   ConversationDetail `settings` is absent from older servers
 * @typedef {Object} ConversationSettings what a conversation remembers for its prompts; a field left out is the
 *   default
 * @property {string} [model]
 * @property {string} [system]
 * @property {number} [temperature]
 * @property {number} [max_tokens]
 */

/**
 * An HTTP answer that was not 2xx; `status` lets the view tell "gone" (404) from "try again". A refusal of a change
 * also carries the server's words for a person (`reason`) and its stable `code`, when it sent them.
 */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {{reason?: string|null, code?: string|null}} [detail]
   */
  constructor(status, { reason = null, code = null } = {}) {
    super(`The server answered ${status}.`);
    this.name = 'ApiError';
    this.status = status;
    this.reason = reason;
    this.code = code;
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

/**
 * Gives a conversation a new title (`PATCH`, CSRF-protected); the server trims it and takes 1 to 200 characters.
 * @param {string} conversationsUrl
 * @param {string} id
 * @param {string} title
 * @param {{csrfToken: string}} options
 * @returns {Promise<ConversationSummary>} as the server kept it
 */
export async function renameConversation(conversationsUrl, id, title, { csrfToken }) {
  return sendJson(`${conversationsUrl}${encodeURIComponent(id)}/`, 'PATCH', { title }, csrfToken);
}

/**
 * Replaces what a conversation remembers for its prompts (`PATCH`, CSRF-protected); null fields are the defaults.
 * @param {string} conversationsUrl
 * @param {string} id
 * @param {{model: string|null, system: string|null, temperature: number|null, max_tokens: number|null}} settings
 * @param {{csrfToken: string}} options
 * @returns {Promise<ConversationSettings>} as the server kept them
 */
export async function changeConversationSettings(conversationsUrl, id, settings, { csrfToken }) {
  const body = await sendJson(`${conversationsUrl}${encodeURIComponent(id)}/`, 'PATCH', { settings }, csrfToken);
  return body?.settings ?? {};
}

/**
 * Deletes a conversation for this client (`DELETE`, CSRF-protected); an answer still streaming in it is stopped.
 * @param {string} conversationsUrl
 * @param {string} id
 * @param {{csrfToken: string}} options
 */
export async function deleteConversation(conversationsUrl, id, { csrfToken }) {
  await sendJson(`${conversationsUrl}${encodeURIComponent(id)}/`, 'DELETE', undefined, csrfToken);
}

/**
 * @typedef {ConversationSummary & {snippet: string}} SearchResult
 * @typedef {{conversations: SearchResult[], page: number, next_page: number|null}} SearchPage
 */

/**
 * One page (20) of the client's conversations whose title or content matches `query`, newest first.
 * @param {string} searchUrl e.g. "/api/conversations/search/"
 * @param {string} query
 * @param {{page?: number, signal?: AbortSignal}} [options]
 * @returns {Promise<SearchPage>}
 */
export async function searchConversations(searchUrl, query, { page = 1, signal } = {}) {
  const params = new URLSearchParams({ q: query, page: String(page) });
  const body = await getJson(`${searchUrl}?${params}`, signal);
  return {
    conversations: Array.isArray(body?.conversations) ? body.conversations : [],
    page: body?.page ?? page,
    next_page: body?.next_page ?? null,
  };
}

async function sendJson(url, method, body, csrfToken) {
  const response = await fetch(url, {
    method,
    credentials: 'same-origin',
    headers: {
      Accept: 'application/json',
      'X-CSRFToken': csrfToken,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new ApiError(response.status, await refusalOf(response));
  return response.json();
}

/** What a refused change's JSON body says (`{"error", "code"}`); nothing when it is not JSON (a proxy's page). */
async function refusalOf(response) {
  try {
    const body = await response.json();
    return {
      reason: typeof body?.error === 'string' ? body.error : null,
      code: typeof body?.code === 'string' ? body.code : null,
    };
  } catch {
    return {};
  }
}

/**
 * Keeps the client's feedback on an ended answer (`PUT`, CSRF-protected), or takes it back (`rating` null).
 * @param {string} feedbackUrl the page config's `feedbackUrl`, with `{stream}` where the id goes
 * @param {string} stream the answer's stream id
 * @param {{rating: 'up'|'down'|null, comment?: string}} feedback
 * @param {{csrfToken: string}} options
 * @returns {Promise<Feedback|null>} the feedback as the server kept it
 */
export async function saveFeedback(feedbackUrl, stream, { rating, comment = '' }, { csrfToken }) {
  const url = feedbackUrl.replace('{stream}', encodeURIComponent(stream));
  const body = await sendJson(url, 'PUT', { rating, comment }, csrfToken);
  return body?.feedback ?? null;
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
