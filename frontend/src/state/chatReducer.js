/**
 * The chat's state machine: every server frame and every user action goes through `chatReducer`.
 *
 * It is pure (no sockets, timers or fetches) so that the ordering rules of the protocol can be tested frame by frame:
 * frames apply strictly in order (`pos` in protocol 2, across every kind of frame; `seq` of the deltas in both
 * protocols), a duplicate is ignored, and a missing one is recorded as a gap instead of being glued on out of order.
 * The reducer also says when a stream needs a `resume` frame (`needsResume`): after the connection dropped, when a
 * conversation with a running answer is opened, and when a gap shows up. Sending the frame is the `useResume` hook's
 * job; it reports back with `resumeSent`.
 *
 * An answer is kept twice: as `answer`, the text of its deltas, and as `parts`, what the page shows in order
 * (reasoning, text, tool calls; see `answerParts.js`). The time a frame arrived comes with its action
 * (`receivedAt`), so that timing the thinking needs no clock in here.
 *
 * @typedef {import('./types.js').ChatState} ChatState
 * @typedef {import('./types.js').Exchange} Exchange
 */

import {
  partsFromSaved,
  withReasoning,
  withServerThinkingTime,
  withText,
  withToolArguments,
  withToolCall,
  withToolResult,
  withToolRunning,
  withToolsStopped,
} from './answerParts.js';
import { choosing, pathEnd } from './versions.js';

/** How many of this tab's request ids to remember; a `start` older than that is long overdue anyway. */
const SENT_REQUESTS_KEPT = 50;

/** The notice code of a login that has gone (close 4401); the page shows it with a "Log in" link. */
export const LOGIN_REQUIRED = 'login_required';

/** The error codes whose `retryable` is true (docs/protocol.md), for errors the API gives without it. */
const RETRYABLE_CODES = new Set([
  'too_many_streams',
  'too_many_prompts',
  'over_token_budget',
  'rate_limited',
  'upstream_unavailable',
  'interrupted',
  'shutting_down',
  'internal_error',
]);

/** @returns {ChatState} */
export function initialChatState() {
  return {
    conversation: null,
    exchanges: [],
    chosen: {},
    notices: [],
    nextNoticeId: 1,
    sentRequests: [],
    listVersion: 0,
  };
}

/**
 * @param {ChatState} state
 * @param {{type: string, [key: string]: any}} action
 * @returns {ChatState}
 */
export function chatReducer(state, action) {
  switch (action.type) {
    case 'batch':
      return action.actions.reduce(chatReducer, state);
    case 'frame':
      return applyFrame(state, action.frame, action.receivedAt ?? null);
    case 'promptSent':
      return promptSent(state, action);
    case 'promptQueued':
      return promptQueued(state, action);
    case 'queuedPromptSent':
      return queuedPromptSent(state, action);
    case 'promptResent':
      return promptResent(state, action);
    case 'cancelRequested':
      return updateByStream(state, action.stream, (exchange) => ({ ...exchange, cancelRequested: true }));
    case 'connectionLost':
      return connectionLost(state);
    case 'loginRequired':
      return loginRequired(state);
    case 'resumeSent':
      return updateByStream(state, action.stream, (exchange) => ({
        ...exchange,
        needsResume: false,
        resumedAfter: action.after,
        resumedPos: action.pos ?? null,
      }));
    case 'noticeDismissed':
      return { ...state, notices: state.notices.filter((notice) => notice.id !== action.id) };
    case 'chatCleared':
      return { ...initialChatState(), sentRequests: state.sentRequests, listVersion: state.listVersion };
    case 'conversationLoaded':
      return conversationLoaded(state, action.detail, action.persisted);
    case 'versionShown':
      return { ...state, chosen: { ...state.chosen, [action.branch]: action.key } };
    case 'feedbackSaved':
      return updateByStream(state, action.stream, (exchange) => ({
        ...exchange,
        feedback: feedbackOf(action.feedback),
      }));
    default:
      return state;
  }
}

/**
 * Server frames. Types this client does not know are ignored, as the protocol asks (though one that has a `pos` still
 * takes its place in the stream, so that the frames after it are not taken for a gap).
 * @param {ChatState} state
 * @param {any} frame
 * @param {number|null} [receivedAt] the client's clock (ms) when the frame arrived
 * @returns {ChatState}
 */
export function applyFrame(state, frame, receivedAt = null) {
  if (!frame || typeof frame !== 'object') return state;
  switch (frame.type) {
    case 'start':
      return streamStarted(state, frame);
    case 'delta':
      return deltaReceived(state, frame, receivedAt);
    case 'reasoning':
      return streamFrame(state, frame, (parts) =>
        typeof frame.text === 'string' ? withReasoning(parts, frame.text, receivedAt) : parts,
      );
    case 'tool_call':
      return streamFrame(state, frame, (parts) =>
        typeof frame.call === 'string' && typeof frame.name === 'string'
          ? withToolCall(parts, frame, receivedAt)
          : parts,
      );
    case 'tool_arguments':
      return streamFrame(state, frame, (parts) =>
        typeof frame.text === 'string' ? withToolArguments(parts, frame.call, frame.text) : parts,
      );
    case 'tool_running':
      return streamFrame(state, frame, (parts) => withToolRunning(parts, frame.call));
    case 'tool_result':
      return streamFrame(state, frame, (parts) => withToolResult(parts, frame));
    case 'busy':
      return streamBusy(state, frame);
    case 'done':
      return streamDone(state, frame);
    case 'error':
      return frame.stream ? streamFailed(state, frame) : requestFailed(state, frame);
    default:
      return typeof frame.pos === 'number' ? streamFrame(state, frame, (parts) => parts) : state;
  }
}

// ---- user actions ---------------------------------------------------------------------------------------------

/**
 * The person sent a prompt: show it at once as a pending exchange that `start` will attach to. `parent` is the
 * exchange it follows and `placement` the frame's fields that said so: a new prompt after the path shown, or a new
 * version of an exchange (regenerate, edit), which is shown in place of the one it replaces.
 */
function promptSent(state, { request, content, conversation = null, model = null, parent = null, placement = {} }) {
  const exchange = newExchange({
    key: request,
    request,
    prompt: content,
    conversation,
    model,
    parent,
    placement,
    status: 'pending',
  });
  return {
    ...state,
    exchanges: [...state.exchanges, exchange],
    chosen: choosing(state, exchange),
    sentRequests: rememberRequest(state.sentRequests, request),
  };
}

/**
 * The person sent a prompt that cannot go out yet: the socket is not ready, or an answer is still running (a
 * follow-up must wait for it, so that the model gets it as context). It is shown at once as `queued`; the
 * `usePromptQueue` hook sends it when it may go (`queuedPromptSent`).
 */
function promptQueued(state, { request, content, model = null }) {
  // Where it goes is known when it goes: after whatever the path ends with then.
  const exchange = newExchange({ key: request, request, prompt: content, model, parent: undefined, status: 'queued' });
  return { ...state, exchanges: [...state.exchanges, exchange] };
}

/**
 * A queued prompt went out, into the conversation open at that moment and after the exchange shown last
 * (`parent`): it now waits for its `start`.
 */
function queuedPromptSent(state, { key, conversation = null, parent = null }) {
  const queued = state.exchanges.find((exchange) => exchange.key === key && exchange.status === 'queued');
  if (!queued) return state;
  const sent = { ...queued, conversation, parent, placement: parent ? { parent } : {}, status: 'pending' };
  const next = replaceExchange(state, queued, sent);
  return {
    ...next,
    chosen: choosing(next, sent),
    sentRequests: rememberRequest(state.sentRequests, queued.request),
  };
}

/** Retry of a refused prompt: the same exchange goes back to pending under a new request id. */
function promptResent(state, { key, request }) {
  return {
    ...state,
    exchanges: state.exchanges.map((exchange) =>
      exchange.key === key ? { ...exchange, request, status: 'pending', error: null } : exchange,
    ),
    notices: state.notices.filter((notice) => notice.exchangeKey !== key),
    sentRequests: rememberRequest(state.sentRequests, request),
  };
}

/**
 * The socket closed. A prompt still waiting for `start` may never have reached the server, so it is marked as
 * not sent, with a Retry, rather than left spinning forever. Running streams go on on the server: each needs a
 * `resume` on the next connection, from the last seq it has, to get what it missed.
 */
function connectionLost(state) {
  const pending = state.exchanges.filter((exchange) => exchange.status === 'pending');
  const streaming = state.exchanges.some((exchange) => exchange.status === 'streaming');
  if (pending.length === 0 && !streaming) return state;
  const error = {
    code: 'disconnected',
    message: 'The connection dropped before the server confirmed this message.',
    retryable: true,
  };
  let next = {
    ...state,
    exchanges: state.exchanges.map((exchange) =>
      exchange.status === 'streaming' ? { ...exchange, needsResume: true, resumedAfter: null } : exchange,
    ),
  };
  for (const exchange of pending) next = refusePrompt(next, exchange.key, error);
  return next;
}

/**
 * The server closed the socket because the login is gone (close 4401); the socket hook does not reconnect. Its
 * `not_allowed` error came just before: that notice gives way to one that says what to do (log in again).
 */
function loginRequired(state) {
  const others = state.notices.filter((notice) => notice.code !== 'not_allowed' || notice.exchangeKey !== null);
  return addNotice(
    { ...state, notices: others },
    {
      code: LOGIN_REQUIRED,
      message: 'You are no longer logged in. Log in again to go on chatting.',
      retryable: false,
      exchangeKey: null,
    },
  );
}

// ---- frames -------------------------------------------------------------------------------------------------------

/**
 * `start`: attach the stream to the pending exchange this tab sent, or, when another tab of the same client sent it,
 * show its prompt too. Another tab's prompt is only shown when it belongs here: in the open conversation, or in an
 * empty new chat (which then follows that conversation). It goes where its `parent` says (a server that does not
 * say: after the path shown), and is shown, as it is in the tab that sent it.
 */
function streamStarted(state, frame) {
  if (!frame.stream || findByStream(state, frame.stream)) return state;
  const own = state.exchanges.find((exchange) => exchange.request === frame.request && exchange.status === 'pending');
  if (own) return attachStream(state, own, frame);
  if (state.sentRequests.includes(frame.request)) return state; // ours, but the person has moved on since
  const belongsHere =
    frame.conversation === state.conversation || (state.conversation === null && state.exchanges.length === 0);
  if (!belongsHere) return state;
  const exchange = newExchange({
    key: frame.stream,
    stream: frame.stream,
    parent: 'parent' in frame ? (frame.parent ?? null) : pathEnd(state),
    prompt: typeof frame.content === 'string' ? frame.content : '',
    conversation: frame.conversation ?? null,
    model: frame.model ?? null,
    status: 'streaming',
  });
  const next = { ...state, exchanges: [...state.exchanges, exchange] };
  return openConversation({ ...next, chosen: choosing(next, exchange) }, frame.conversation);
}

function attachStream(state, own, frame) {
  const started = {
    ...own,
    stream: frame.stream,
    // The server's word on where it went; the same as this tab's unless the tab's view was out of date.
    parent: 'parent' in frame ? (frame.parent ?? null) : own.parent,
    conversation: frame.conversation ?? own.conversation,
    model: frame.model ?? own.model,
    status: 'streaming',
    lastPos: typeof frame.pos === 'number' ? frame.pos : 0,
  };
  const next = { ...state, exchanges: state.exchanges.map((exchange) => (exchange === own ? started : exchange)) };
  return state.conversation === null ? openConversation(next, frame.conversation) : next;
}

/** A new chat becomes the conversation its first `start` names; the sidebar list then has a new entry to show. */
function openConversation(state, conversation) {
  if (state.conversation !== null || !conversation) return state;
  return { ...state, conversation, listVersion: state.listVersion + 1 };
}

/**
 * `delta`: append only the next seq (and, in protocol 2, the next pos). One already applied is a duplicate
 * (ignored); one further on means frames were lost: it is dropped, a gap is recorded, and nothing more is appended
 * until the missing one arrives (the `resume` the gap asks for replays everything after the last one applied, in
 * order).
 */
function deltaReceived(state, frame, receivedAt) {
  if (typeof frame.seq !== 'number' || typeof frame.text !== 'string') return state;
  return updateByStream(state, frame.stream, (exchange) => {
    if (exchange.status !== 'streaming') return exchange;
    const place = placeOf(exchange, frame);
    if (place === 'applied') return exchange;
    if (place === 'later') return withGap(exchange);
    // In its place but a seq already applied (a page that had the text before it knew pos): only the place is taken.
    if (frame.seq <= exchange.lastSeq) return typeof frame.pos === 'number' ? placed(exchange, frame) : exchange;
    if (frame.seq > exchange.lastSeq + 1) return withGap(exchange);
    return {
      ...placed(exchange, frame),
      answer: exchange.answer + frame.text,
      lastSeq: frame.seq,
      parts: withText(exchange.parts, frame.text, receivedAt),
    };
  });
}

/**
 * A protocol-2 frame of a running stream other than a delta (reasoning, a tool call's progress): applied in `pos`
 * order like a delta, by `change` on the answer's parts. A frame whose content is unusable still takes its place.
 * @param {ChatState} state
 * @param {any} frame
 * @param {(parts: import('./types.js').AnswerPart[]) => import('./types.js').AnswerPart[]} change
 */
function streamFrame(state, frame, change) {
  return updateByStream(state, frame.stream, (exchange) => {
    if (exchange.status !== 'streaming') return exchange;
    const place = placeOf(exchange, frame);
    if (place === 'applied') return exchange;
    if (place === 'later') return withGap(exchange);
    return { ...placed(exchange, frame), parts: change(exchange.parts) };
  });
}

/**
 * Where a frame falls in its stream's record, by its `pos`: `next` (apply it), `applied` (a duplicate, as after a
 * resume) or `later` (frames before it are missing). A frame without `pos` (protocol 1), or an exchange whose place
 * is not known (`lastPos` null: resumed by `after` alone), counts as next; deltas are then ordered by `seq`.
 * @param {Exchange} exchange
 * @param {{pos?: unknown}} frame
 * @returns {'next'|'applied'|'later'}
 */
function placeOf(exchange, frame) {
  if (typeof frame.pos !== 'number' || exchange.lastPos === null) return 'next';
  if (frame.pos <= exchange.lastPos) return 'applied';
  return frame.pos > exchange.lastPos + 1 ? 'later' : 'next';
}

/** The exchange with `frame` applied in its place: its pos is the last one, and any gap before it is filled. */
function placed(exchange, frame) {
  return { ...exchange, lastPos: typeof frame.pos === 'number' ? frame.pos : exchange.lastPos, gap: null };
}

/**
 * Frames after `lastPos` (deltas after `lastSeq`) are missing. One `resume` from there fills the hole, so one is asked
 * for, unless a resume from this very place is already on its way (nothing was applied since it was sent): a gap asks
 * for at most one resume until it is filled.
 * @param {Exchange} exchange
 * @returns {Exchange}
 */
function withGap(exchange) {
  if (exchange.gap) return exchange;
  const resumeOnItsWay =
    !exchange.needsResume &&
    exchange.resumedAfter === exchange.lastSeq &&
    (exchange.resumedPos === null || exchange.resumedPos === exchange.lastPos);
  return { ...exchange, gap: gapAt(exchange), needsResume: !resumeOnItsWay };
}

/** `busy`: the server running the stream is overloaded, so the rest may come late; said while the stream runs. */
function streamBusy(state, frame) {
  const message = typeof frame.message === 'string' ? frame.message : 'The server is busy.';
  return updateByStream(state, frame.stream, (exchange) =>
    exchange.status === 'streaming' ? { ...exchange, busy: message } : exchange,
  );
}

/**
 * `done`: the stream ended, and a cancel ends as `cancelled`. When its seq says deltas are missing, the end is held
 * back: the stream stays open with a gap, and the resume replays the missing deltas followed by the same `done`.
 */
function streamDone(state, frame) {
  const exchange = findByStream(state, frame.stream);
  if (!exchange || exchange.status !== 'streaming') return state;
  if (exchange.gap || (typeof frame.seq === 'number' && frame.seq > exchange.lastSeq)) {
    const waiting = withGap(exchange);
    return waiting === exchange ? state : replaceExchange(state, exchange, waiting);
  }
  const ttftMs = frame.ttft_ms ?? null;
  const firstOutputMs = frame.first_output_ms ?? null;
  const finished = {
    ...exchange,
    status: frame.finish_reason === 'cancelled' ? 'cancelled' : 'completed',
    finishReason: frame.finish_reason ?? null,
    usage: frame.usage ?? null,
    ttftMs,
    firstOutputMs,
    durationMs: frame.duration_ms ?? null,
    parts: withServerThinkingTime(withToolsStopped(exchange.parts), firstOutputMs, ttftMs),
    needsResume: false,
  };
  return { ...replaceExchange(state, exchange, finished), listVersion: state.listVersion + 1 };
}

/**
 * An `error` with a stream ends that stream; the partial answer stays. While deltas are missing the end is held
 * back, like `done`: the resume under way replays them, then the same error.
 */
function streamFailed(state, frame) {
  const exchange = findByStream(state, frame.stream);
  if (!exchange || (exchange.status !== 'streaming' && exchange.status !== 'pending') || exchange.gap) return state;
  const failed = {
    ...exchange,
    status: 'failed',
    error: errorOf(frame),
    parts: withToolsStopped(exchange.parts),
    needsResume: false,
  };
  return { ...replaceExchange(state, exchange, failed), listVersion: state.listVersion + 1 };
}

/**
 * An `error` about a frame this client sent changes nothing on the server. When it names a prompt of ours, that
 * prompt is marked as not sent (its text stays visible) and a notice near the composer offers Retry.
 * A `not_found` that names no request answers a `cancel` for a stream the server no longer runs. Usually its `done`
 * already arrived and there is nothing to say. A stream still shown as streaming here missed its end (the server
 * restarted, or the `done` came while disconnected): it is marked interrupted so the person is not left waiting.
 */
function requestFailed(state, frame) {
  if (!frame.request && frame.code === 'not_found') return cancelledStreamsGone(state);
  const own = frame.request
    ? state.exchanges.find((exchange) => exchange.request === frame.request && exchange.status === 'pending')
    : undefined;
  if (own) return refusePrompt(state, own.key, errorOf(frame));
  // Nothing of ours to send again, so no Retry whatever `retryable` says.
  return addNotice(state, { ...errorOf(frame), retryable: false, exchangeKey: null });
}

function cancelledStreamsGone(state) {
  const orphaned = (exchange) => exchange.status === 'streaming' && exchange.cancelRequested;
  if (!state.exchanges.some(orphaned)) return state;
  return {
    ...state,
    exchanges: state.exchanges.map((exchange) =>
      orphaned(exchange) ? { ...exchange, status: 'interrupted', parts: withToolsStopped(exchange.parts) } : exchange,
    ),
  };
}

function refusePrompt(state, key, error) {
  const next = {
    ...state,
    exchanges: state.exchanges.map((exchange) =>
      exchange.key === key ? { ...exchange, status: 'failed', error } : exchange,
    ),
  };
  return addNotice(next, { ...error, exchangeKey: key });
}

/** A notice replaces an older one about the same prompt, or (about no prompt) one that says the same thing. */
function addNotice(state, notice) {
  const withoutOld = state.notices.filter((old) =>
    notice.exchangeKey
      ? old.exchangeKey !== notice.exchangeKey
      : old.exchangeKey !== null || old.code !== notice.code || old.message !== notice.message,
  );
  return {
    ...state,
    notices: [...withoutOld, { id: state.nextNoticeId, ...notice }],
    nextNoticeId: state.nextNoticeId + 1,
  };
}

// ---- conversations from the HTTP API ------------------------------------------------------------------------------

/**
 * An old conversation was opened: its saved exchanges replace what is shown. The API shows an answer that is still
 * streaming as empty; when this tab persisted the text it had of that stream (`persisted`, from before a reload),
 * that text is shown again, and the stream resumes from its seq. Either way it needs a `resume`.
 * @param {ChatState} state
 * @param {import('../api.js').ConversationDetail} detail
 * @param {import('./types.js').PersistedStream[]} [persisted]
 */
function conversationLoaded(state, detail, persisted = []) {
  const kept = new Map(persisted.map((entry) => [entry.stream, entry]));
  const saved = detail.exchanges ?? [];
  return {
    ...initialChatState(),
    conversation: detail.id,
    exchanges: saved.map((one, index) => {
      // A server without versions gives no parent: each exchange follows the one before it.
      const parent = 'parent' in one ? (one.parent ?? null) : (saved[index - 1]?.stream ?? null);
      const exchange = { ...exchangeFromSaved(one, detail.id), parent };
      return exchange.status === 'streaming' ? restored(exchange, kept.get(exchange.stream)) : exchange;
    }),
    sentRequests: state.sentRequests,
    listVersion: state.listVersion,
  };
}

/**
 * @returns {Exchange} a streaming exchange from the API, with what this tab had of it (text, parts and place) when
 *   that is further on
 */
function restored(exchange, entry) {
  const further =
    entry &&
    entry.lastSeq >= exchange.lastSeq &&
    entry.answer.length >= exchange.answer.length &&
    (entry.lastSeq > exchange.lastSeq || (entry.lastPos ?? 0) > (exchange.lastPos ?? 0));
  const kept = further
    ? {
        answer: entry.answer,
        lastSeq: entry.lastSeq,
        // An entry of an older page has no place: the resume then goes by `after` alone.
        lastPos: Number.isInteger(entry.lastPos) ? entry.lastPos : null,
        parts: partsFromSaved(entry.parts, entry.answer),
      }
    : {};
  return { ...exchange, prompt: exchange.prompt || entry?.prompt || '', ...kept, needsResume: true };
}

/**
 * A running answer of a protocol-2 server (it sends `parts`) is shown from nothing and replayed whole from place 0
 * unless the API says which place its parts go up to (`last_pos`): resuming it by `after` alone could apply reasoning
 * or tool frames it already shows a second time. A protocol-1 server's running answer resumes from its `last_seq`.
 * @returns {Exchange}
 */
function exchangeFromSaved(saved, conversation) {
  const startOver = saved.status === 'streaming' && Array.isArray(saved.parts) && !Number.isInteger(saved.last_pos);
  const answer = startOver ? '' : (saved.answer ?? '');
  const lastSeq = startOver ? 0 : (saved.last_seq ?? 0);
  const ttftMs = saved.ttft_ms ?? null;
  const firstOutputMs = saved.first_output_ms ?? null;
  const parts = startOver ? [] : partsFromSaved(saved.parts, answer);
  return newExchange({
    key: saved.stream,
    stream: saved.stream,
    conversation,
    prompt: saved.prompt ?? '',
    model: saved.model ?? null,
    answer,
    parts: withServerThinkingTime(parts, firstOutputMs, ttftMs),
    status: saved.status ?? 'completed',
    lastSeq,
    // Where a running answer stands in its record, when the API says; nothing shown yet is place 0.
    lastPos: Number.isInteger(saved.last_pos) ? saved.last_pos : lastSeq === 0 && parts.length === 0 ? 0 : null,
    finishReason: saved.finish_reason ?? null,
    usage: saved.usage ?? null,
    ttftMs,
    firstOutputMs,
    durationMs: saved.duration_ms ?? null,
    // The API does not say whether trying again may work; the code does (docs/protocol.md), as it did live.
    error: saved.error
      ? { code: saved.error.code, message: saved.error.message, retryable: RETRYABLE_CODES.has(saved.error.code) }
      : null,
    feedback: feedbackOf(saved.feedback),
  });
}

/**
 * Feedback as the server keeps it (the API's exchange, or the answer to saving it); anything else is none.
 * @returns {import('./types.js').Feedback|null}
 */
function feedbackOf(feedback) {
  if (!feedback || (feedback.rating !== 'up' && feedback.rating !== 'down')) return null;
  return { rating: feedback.rating, comment: typeof feedback.comment === 'string' ? feedback.comment : '' };
}

// ---- helpers ------------------------------------------------------------------------------------------------------

/** @returns {Exchange} an exchange with every field present, so components never meet `undefined` */
export function newExchange(fields) {
  return {
    key: '',
    request: null,
    stream: null,
    parent: null,
    placement: {},
    conversation: null,
    prompt: '',
    model: null,
    answer: '',
    parts: [],
    status: 'pending',
    lastSeq: 0,
    lastPos: 0,
    gap: null,
    finishReason: null,
    usage: null,
    ttftMs: null,
    firstOutputMs: null,
    durationMs: null,
    error: null,
    busy: null,
    cancelRequested: false,
    needsResume: false,
    resumedAfter: null,
    resumedPos: null,
    feedback: null,
    ...fields,
  };
}

function gapAt(exchange) {
  return { stream: exchange.stream, after: exchange.lastSeq };
}

function errorOf(frame) {
  return {
    code: String(frame.code ?? 'error'),
    message: String(frame.message ?? 'Something went wrong.'),
    retryable: frame.retryable === true,
  };
}

function rememberRequest(sentRequests, request) {
  return [...sentRequests, request].slice(-SENT_REQUESTS_KEPT);
}

function findByStream(state, stream) {
  return stream ? state.exchanges.find((exchange) => exchange.stream === stream) : undefined;
}

function replaceExchange(state, old, replacement) {
  return { ...state, exchanges: state.exchanges.map((exchange) => (exchange === old ? replacement : exchange)) };
}

/** Applies `change` to the exchange of `stream`; frames for streams not shown here are ignored. */
function updateByStream(state, stream, change) {
  const exchange = findByStream(state, stream);
  if (!exchange) return state;
  const changed = change(exchange);
  return changed === exchange ? state : replaceExchange(state, exchange, changed);
}
