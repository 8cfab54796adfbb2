/**
 * The page's configuration, written by the Django view with `json_script` into `<script id="chat-config">`.
 *
 * @typedef {Object} ChatConfig
 * @property {string} socketPath path of the chat WebSocket, e.g. "/ws/chat/"
 * @property {string} csrfToken for the logout form
 * @property {{name: string, authenticated: boolean}} user
 * @property {string[]} models
 * @property {string} defaultModel
 * @property {boolean} demo true when the built-in demo model answers
 * @property {number} protocol
 * @property {string} conversationsUrl e.g. "/api/conversations/"
 * @property {string} conversationSearchUrl e.g. "/api/conversations/search/"
 * @property {string} feedbackUrl where feedback on an answer goes, with `{stream}` for its id, e.g.
 *   "/api/exchanges/{stream}/feedback/"
 * @property {string|null} logoutUrl
 * @property {string|null} loginUrl optional: shown as a "Log in" link for anonymous visitors
 * @property {boolean} loginRequired
 * @property {boolean} systemPinned the server sets the system instruction itself (as `ready.system_pinned` says)
 */

/** @type {ChatConfig} */
export const DEFAULT_CONFIG = {
  socketPath: '/ws/chat/',
  csrfToken: '',
  user: { name: '', authenticated: false },
  models: [],
  defaultModel: '',
  demo: false,
  protocol: 1,
  conversationsUrl: '/api/conversations/',
  conversationSearchUrl: '/api/conversations/search/',
  feedbackUrl: '/api/exchanges/{stream}/feedback/',
  logoutUrl: null,
  loginUrl: null,
  loginRequired: false,
  systemPinned: false,
};

/**
 * Reads the configuration; a missing or broken script tag gives the defaults, so the page still comes up.
 * @param {Document} doc
 * @returns {ChatConfig}
 */
export function readChatConfig(doc) {
  const script = doc.getElementById('chat-config');
  let parsed = {};
  try {
    parsed = script ? (JSON.parse(script.textContent ?? '{}') ?? {}) : {};
  } catch {
    parsed = {};
  }
  return {
    ...DEFAULT_CONFIG,
    ...parsed,
    user: { ...DEFAULT_CONFIG.user, ...(parsed.user ?? {}) },
    models: Array.isArray(parsed.models) ? parsed.models : DEFAULT_CONFIG.models,
  };
}
