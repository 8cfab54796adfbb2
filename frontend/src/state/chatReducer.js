/**
 * The chat's state machine: every server frame and every user action goes through `chatReducer`.
 *
 * It is pure (no sockets, timers or fetches) so that the ordering rules of the protocol can be tested frame by frame:
 * deltas apply strictly in seq order, a duplicate is ignored, and a missing one is recorded as a gap instead of
 * being glued on out of order. The reducer also says when a stream needs a `resume` frame (`needsResume`): after the
 * connection dropped, when a conversation with a running answer is opened, and when a gap shows up. Sending the
 * frame is the `useResume` hook's job; it reports back with `resumeSent`.
 *
 * @typedef {import('./types.js').ChatState} ChatState
 * @typedef {import('./types.js').Exchange} Exchange
 */

/** How many of this tab's request ids to remember; a `start` older than that is long overdue anyway. */
const SENT_REQUESTS_KEPT = 50;

/** @returns {ChatState} */
export function initialChatState() {
  return { conversation: null, exchanges: [], notices: [], nextNoticeId: 1, sentRequests: [], listVersion: 0 };
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
      return applyFrame(state, action.frame);
    case 'promptSent':
      return promptSent(state, action);
    case 'promptResent':
      return promptResent(state, action);
    case 'cancelRequested':
      return updateByStream(state, action.stream, (exchange) => ({ ...exchange, cancelRequested: true }));
    case 'connectionLost':
      return connectionLost(state);
    case 'resumeSent':
      return updateByStream(state, action.stream, (exchange) => ({
        ...exchange,
        needsResume: false,
        resumedAfter: action.after,
      }));
    case 'noticeDismissed':
      return { ...state, notices: state.notices.filter((notice) => notice.id !== action.id) };
    case 'chatCleared':
      return { ...initialChatState(), sentRequests: state.sentRequests, listVersion: state.listVersion };
    case 'conversationLoaded':
      return conversationLoaded(state, action.detail, action.persisted);
    default:
      return state;
  }
}

/**
 * Server frames. Types this client does not know are ignored, as the protocol asks.
 * @param {ChatState} state
 * @param {any} frame
 * @returns {ChatState}
 */
export function applyFrame(state, frame) {
  if (!frame || typeof frame !== 'object') return state;
  switch (frame.type) {
    case 'start':
      return streamStarted(state, frame);
    case 'delta':
      return deltaReceived(state, frame);
    case 'busy':
      return streamBusy(state, frame);
    case 'done':
      return streamDone(state, frame);
    case 'error':
      return frame.stream ? streamFailed(state, frame) : requestFailed(state, frame);
    default:
      return state;
  }
}

// ---- user actions ---------------------------------------------------------------------------------------------

/** The person sent a prompt: show it at once as a pending exchange that `start` will attach to. */
function promptSent(state, { request, content, conversation = null, model = null }) {
  const exchange = newExchange({ key: request, request, prompt: content, conversation, model, status: 'pending' });
  return {
    ...state,
    exchanges: [...state.exchanges, exchange],
    sentRequests: rememberRequest(state.sentRequests, request),
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

// ---- frames -------------------------------------------------------------------------------------------------------

/**
 * `start`: attach the stream to the pending exchange this tab sent, or, when another tab of the same client sent it,
 * show its prompt too. Another tab's prompt is only shown when it belongs here: in the open conversation, or in an
 * empty new chat (which then follows that conversation).
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
    prompt: typeof frame.content === 'string' ? frame.content : '',
    conversation: frame.conversation ?? null,
    model: frame.model ?? null,
    status: 'streaming',
  });
  return openConversation({ ...state, exchanges: [...state.exchanges, exchange] }, frame.conversation);
}

function attachStream(state, own, frame) {
  const started = {
    ...own,
    stream: frame.stream,
    conversation: frame.conversation ?? own.conversation,
    model: frame.model ?? own.model,
    status: 'streaming',
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
 * `delta`: append only the next seq. A seq already applied is a duplicate (ignored); a seq further on means deltas
 * were lost: it is dropped, a gap is recorded, and nothing more is appended until the missing seq arrives (the
 * `resume` the gap asks for replays everything after the last seq applied, in order).
 */
function deltaReceived(state, frame) {
  if (typeof frame.seq !== 'number' || typeof frame.text !== 'string') return state;
  return updateByStream(state, frame.stream, (exchange) => {
    if (exchange.status !== 'streaming' || frame.seq <= exchange.lastSeq) return exchange;
    if (frame.seq > exchange.lastSeq + 1) return withGap(exchange);
    return { ...exchange, answer: exchange.answer + frame.text, lastSeq: frame.seq, gap: null };
  });
}

/**
 * Deltas after `lastSeq` are missing. One `resume` from there fills the hole, so one is asked for, unless a resume
 * from this very seq is already on its way (nothing was applied since it was sent): a gap asks for at most one
 * resume until it is filled.
 * @param {Exchange} exchange
 * @returns {Exchange}
 */
function withGap(exchange) {
  if (exchange.gap) return exchange;
  const resumeOnItsWay = exchange.resumedAfter === exchange.lastSeq && !exchange.needsResume;
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
  const finished = {
    ...exchange,
    status: frame.finish_reason === 'cancelled' ? 'cancelled' : 'completed',
    finishReason: frame.finish_reason ?? null,
    usage: frame.usage ?? null,
    ttftMs: frame.ttft_ms ?? null,
    durationMs: frame.duration_ms ?? null,
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
  const failed = { ...exchange, status: 'failed', error: errorOf(frame), needsResume: false };
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
      orphaned(exchange) ? { ...exchange, status: 'interrupted' } : exchange,
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

function addNotice(state, notice) {
  const withoutOld = state.notices.filter((old) => !notice.exchangeKey || old.exchangeKey !== notice.exchangeKey);
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
  return {
    ...initialChatState(),
    conversation: detail.id,
    exchanges: (detail.exchanges ?? []).map((saved) => {
      const exchange = exchangeFromSaved(saved, detail.id);
      return exchange.status === 'streaming' ? restored(exchange, kept.get(exchange.stream)) : exchange;
    }),
    sentRequests: state.sentRequests,
    listVersion: state.listVersion,
  };
}

/** @returns {Exchange} a streaming exchange from the API, with the text this tab had of it when that is further on */
function restored(exchange, entry) {
  const further = entry && entry.lastSeq > exchange.lastSeq && entry.answer.length >= exchange.answer.length;
  return {
    ...exchange,
    prompt: exchange.prompt || entry?.prompt || '',
    ...(further ? { answer: entry.answer, lastSeq: entry.lastSeq } : {}),
    needsResume: true,
  };
}

/** @returns {Exchange} */
function exchangeFromSaved(saved, conversation) {
  return newExchange({
    key: saved.stream,
    stream: saved.stream,
    conversation,
    prompt: saved.prompt ?? '',
    model: saved.model ?? null,
    answer: saved.answer ?? '',
    status: saved.status ?? 'completed',
    lastSeq: saved.last_seq ?? 0,
    finishReason: saved.finish_reason ?? null,
    usage: saved.usage ?? null,
    ttftMs: saved.ttft_ms ?? null,
    durationMs: saved.duration_ms ?? null,
    error: saved.error ? { code: saved.error.code, message: saved.error.message, retryable: false } : null,
  });
}

// ---- helpers ------------------------------------------------------------------------------------------------------

/** @returns {Exchange} an exchange with every field present, so components never meet `undefined` */
export function newExchange(fields) {
  return {
    key: '',
    request: null,
    stream: null,
    conversation: null,
    prompt: '',
    model: null,
    answer: '',
    status: 'pending',
    lastSeq: 0,
    gap: null,
    finishReason: null,
    usage: null,
    ttftMs: null,
    durationMs: null,
    error: null,
    busy: null,
    cancelRequested: false,
    needsResume: false,
    resumedAfter: null,
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
