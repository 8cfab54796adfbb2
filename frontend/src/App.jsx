import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import { Composer } from './components/Composer.jsx';
import { DemoNotice } from './components/DemoNotice.jsx';
import { ErrorNotice } from './components/ErrorNotice.jsx';
import { Header } from './components/Header.jsx';
import { JumpToLatest } from './components/JumpToLatest.jsx';
import { LoginNotice } from './components/LoginNotice.jsx';
import { EmptyChat, MessageList } from './components/MessageList.jsx';
import { SettingsButton, SettingsPanel } from './components/SettingsPanel.jsx';
import { Sidebar } from './components/Sidebar.jsx';
import { useAnnouncement } from './hooks/useAnnouncement.js';
import { useConversationActions } from './hooks/useConversationActions.js';
import { useConversationList } from './hooks/useConversationList.js';
import { useConversationSearch } from './hooks/useConversationSearch.js';
import { useConversationOpener } from './hooks/useConversationOpener.js';
import { useConversationSettings } from './hooks/useConversationSettings.js';
import { useDraft } from './hooks/useDraft.js';
import { useEscapeKey } from './hooks/useEscapeKey.js';
import { useFeedback } from './hooks/useFeedback.js';
import { usePersistedStreams } from './hooks/usePersistedStreams.js';
import { usePromptQueue } from './hooks/usePromptQueue.js';
import { useResume } from './hooks/useResume.js';
import { useStableCallback } from './hooks/useStableCallback.js';
import { useStickToBottom } from './hooks/useStickToBottom.js';
import { useActionBatcher } from './socket/actionBatcher.js';
import { socketUrl } from './socket/socketUrl.js';
import { CLOSE_LOGIN_REQUIRED, useChatSocket } from './socket/useChatSocket.js';
import { chatReducer, initialChatState, LOGIN_REQUIRED } from './state/chatReducer.js';
import { limitsOf, queueReason, sendBlocker, streamingExchanges } from './state/selectors.js';
import { branchOf, pathEnd, shownPath } from './state/versions.js';

/**
 * The chat page. It is the one place where I/O meets state: socket frames and API answers become reducer actions,
 * and user actions become frames. Everything it renders comes from `components/`.
 *
 * @param {{config: import('./config.js').ChatConfig,
 *   createSocket?: (url: string) => import('./socket/useChatSocket.js').SocketLike}} props
 */
export function App({ config, createSocket }) {
  const [state, dispatch] = useReducer(chatReducer, undefined, initialChatState);
  const batcher = useActionBatcher(dispatch);
  /** User actions skip the frame wait but stay in order behind frames already queued. */
  const dispatchNow = useCallback(
    (action) => {
      batcher.push(action);
      batcher.flush();
    },
    [batcher],
  );

  const url = useMemo(() => socketUrl(config.socketPath, window.location), [config.socketPath]);
  const socket = useChatSocket({
    url,
    createSocket,
    // The time of arrival goes with the frame, so the reducer can time the thinking and stay pure.
    onFrame: (frame) => batcher.push({ type: 'frame', frame, receivedAt: performance.now() }),
    onDisconnect: ({ code }) => {
      batcher.push({ type: 'connectionLost' });
      if (code === CLOSE_LOGIN_REQUIRED) batcher.push({ type: 'loginRequired' });
    },
  });

  const models = socket.ready?.models ?? config.models;
  const defaultModel = socket.ready?.model ?? config.defaultModel;
  const conversationSettings = useConversationSettings({
    conversationsUrl: config.conversationsUrl,
    csrfToken: config.csrfToken,
    conversation: state.conversation,
    ready: socket.ready,
    models,
    defaultModel,
    pinnedByConfig: config.systemPinned,
  });
  const model = conversationSettings.model;
  /** Only name a model in the frame when the person could pick one; otherwise the server's default applies. */
  const frameModelOf = (/** @type {string|null} */ chosen) => (models.length > 1 ? chosen : null);
  const frameModel = frameModelOf(model);
  /** The conversation's generation settings that go with every prompt (system instruction, temperature, max tokens). */
  const frameSettings = conversationSettings.frame;
  const demo = socket.ready ? socket.ready.demo === true : config.demo;

  const [draft, setDraft] = useDraft();
  const textareaRef = useRef(/** @type {HTMLTextAreaElement|null} */ (null));
  const [navOpen, setNavOpen] = useState(false);
  const closeNav = useCallback(() => setNavOpen(false), []);
  const persistedStreams = usePersistedStreams(state.exchanges);
  useResume({ ready: socket.ready, exchanges: state.exchanges, send: socket.send, dispatch: dispatchNow });
  const opening = useConversationOpener({
    conversationsUrl: config.conversationsUrl,
    conversation: state.conversation,
    dispatch: dispatchNow,
    persistedStreams,
    onLoaded: conversationSettings.loaded,
    onNewChat: () => {
      closeNav();
      textareaRef.current?.focus();
    },
  });
  const limits = limitsOf(socket.ready);
  // While another conversation loads, a prompt would land in the one that is about to be replaced.
  const blocker = opening.loading ? 'Opening the conversation…' : sendBlocker({ ready: socket.ready, draft });
  // A prompt taken now waits for the connection, or for the running answer to end: it is queued, never lost.
  const queueNote = queueReason({ ready: socket.ready, state });
  // A Retry goes out at once, so only when a new prompt would too.
  const retryDisabled = queueNote !== null;
  const streaming = streamingExchanges(state);
  const scroll = useStickToBottom();

  const path = shownPath(state);

  /**
   * Sends a prompt into the open conversation; returns false (and changes nothing) when the socket could not take it.
   * `parent` is the exchange it follows, and `placement` the frame's fields that say so (see `versions.js`).
   */
  function sendPrompt(content, { parent, placement }) {
    const request = newRequestId();
    const conversation = state.conversation;
    const frame = promptFrame({ request, content, conversation, model: frameModel, settings: frameSettings });
    if (!socket.send({ ...frame, ...placement })) return false;
    dispatchNow({ type: 'promptSent', request, content, conversation, model, parent, placement });
    return true;
  }

  /** A new prompt after the exchange shown last. */
  function sendAfterPath(content) {
    const parent = pathEnd(state);
    return sendPrompt(content, { parent, placement: parent ? { parent } : {} });
  }

  /** Takes the draft: sent at once when it may go, else queued (also when the socket turned out to be gone). */
  function send() {
    if (blocker) return;
    const content = tidyPrompt(draft);
    if (queueNote !== null || !sendAfterPath(content)) {
      dispatchNow({ type: 'promptQueued', request: newRequestId(), content, model });
    }
    setDraft('');
    scroll.scrollToBottom();
  }

  /**
   * Sends a queued prompt into the conversation open now, after `parent` (the exchange shown last), under the
   * request id and model it was queued with.
   */
  const sendQueued = useStableCallback(
    (/** @type {import('./state/types.js').Exchange} */ exchange, /** @type {string|null} */ parent) =>
      socket.send({
        ...promptFrame({
          request: exchange.request,
          content: exchange.prompt,
          conversation: state.conversation,
          model: frameModelOf(exchange.model),
          settings: frameSettings,
        }),
        ...(parent ? { parent } : {}),
      }),
  );
  usePromptQueue({ ready: socket.ready, state, send: sendQueued, dispatch: dispatchNow });
  const saveFeedback = useFeedback({
    feedbackUrl: config.feedbackUrl,
    csrfToken: config.csrfToken,
    dispatch: dispatchNow,
  });

  const stop = useStableCallback((/** @type {string} */ stream) => {
    if (!socket.send({ type: 'cancel', stream })) return;
    dispatchNow({ type: 'cancelRequested', stream });
    // The Stop button goes away with the stream; keep keyboard focus somewhere useful.
    textareaRef.current?.focus();
  });

  /** Stop (where Send is) and Escape stop every answer running here; usually the one, since follow-ups queue. */
  const stopAnswers = useStableCallback(() => {
    for (const exchange of streamingExchanges(state)) {
      if (!exchange.cancelRequested) stop(exchange.stream);
    }
  });

  /** A new version of an answer: the same question asked again, shown in its place (the old one a switch away). */
  const regenerate = useStableCallback((/** @type {import('./state/types.js').Exchange} */ exchange) => {
    if (!exchange.stream) return;
    sendPrompt(exchange.prompt, { parent: exchange.parent ?? null, placement: { regenerate: exchange.stream } });
    scroll.scrollToBottom();
  });

  /** A new version of a question: asked from there, a branch beside the old one. Returns whether it went out. */
  const edit = useStableCallback((/** @type {import('./state/types.js').Exchange} */ exchange, content) => {
    if (!exchange.stream) return false;
    return sendPrompt(tidyPrompt(content), { parent: exchange.parent ?? null, placement: { edit: exchange.stream } });
  });

  const showVersion = useStableCallback((/** @type {import('./state/types.js').Exchange} */ exchange) =>
    dispatchNow({ type: 'versionShown', branch: branchOf(exchange), key: exchange.key }),
  );

  /**
   * Retry sends the same prompt again. A refused prompt is re-sent as the same exchange, in the same place; a
   * failed answer is regenerated, so the failed one stays readable as the version before.
   */
  const retry = useStableCallback((/** @type {import('./state/types.js').Exchange} */ exchange) => {
    if (exchange.stream !== null) {
      regenerate(exchange);
      return;
    }
    const request = newRequestId();
    const conversation = exchange.conversation ?? state.conversation;
    const frame = promptFrame({
      request,
      content: exchange.prompt,
      conversation,
      model: frameModel,
      settings: frameSettings,
    });
    if (socket.send({ ...frame, ...exchange.placement })) {
      dispatchNow({ type: 'promptResent', key: exchange.key, request });
    }
  });

  const {
    conversations,
    status: listStatus,
    reload: reloadList,
  } = useConversationList(config.conversationsUrl, state.listVersion);
  // Bumped after a rename or a delete, so that the search shows it too.
  const [searchVersion, setSearchVersion] = useState(0);
  const search = useConversationSearch(config.conversationSearchUrl, state.listVersion + searchVersion);
  const conversationActions = useConversationActions({
    conversationsUrl: config.conversationsUrl,
    csrfToken: config.csrfToken,
    current: state.conversation,
    onChanged: () => {
      reloadList();
      setSearchVersion((version) => version + 1);
    },
    onCurrentDeleted: opening.newChat,
  });
  const announcement = useAnnouncement(state.exchanges, socket.status);
  useEscapeKey(navOpen, closeNav);
  useEscapeKey(!navOpen && streaming.length > 0 && socket.ready !== null, stopAnswers);
  useEffect(() => {
    if (window.matchMedia?.('(min-width: 721px)').matches) textareaRef.current?.focus();
  }, []);

  const notices = state.notices.map((notice) => {
    if (notice.code === LOGIN_REQUIRED) {
      return (
        <LoginNotice
          key={notice.id}
          message={notice.message}
          loginUrl={config.loginUrl}
          onDismiss={() => dispatch({ type: 'noticeDismissed', id: notice.id })}
        />
      );
    }
    const exchange = state.exchanges.find((candidate) => candidate.key === notice.exchangeKey);
    return (
      <ErrorNotice
        key={notice.id}
        message={notice.message}
        retryable={notice.retryable && exchange !== undefined}
        onRetry={exchange ? () => retry(exchange) : undefined}
        retryDisabled={retryDisabled}
        onDismiss={() => dispatch({ type: 'noticeDismissed', id: notice.id })}
      />
    );
  });

  return (
    <div className="app" data-nav-open={navOpen ? 'true' : undefined}>
      <a
        href="#composer-input"
        className="skip-link"
        onClick={(event) => {
          event.preventDefault();
          textareaRef.current?.focus();
        }}
      >
        Skip to the message box
      </a>
      <Header
        status={socket.status}
        navOpen={navOpen}
        onToggleNav={() => setNavOpen((open) => !open)}
        config={config}
      />
      <Sidebar
        conversations={conversations}
        listStatus={listStatus}
        current={state.conversation}
        open={navOpen}
        onNewChat={opening.newChat}
        onNavigate={closeNav}
        onReload={reloadList}
        search={search}
        onRename={conversationActions.rename}
        onDelete={conversationActions.remove}
      />
      {navOpen && <div className="backdrop" aria-hidden="true" onClick={closeNav} />}
      <main className="chat">
        {/* Focusable and named: on a phone it is the one thing that scrolls, and a keyboard must reach it. */}
        <div className="messages" ref={scroll.ref} tabIndex={0} role="region" aria-label="Conversation">
          <div className="messages-inner" ref={scroll.contentRef}>
            {opening.error && (
              <ErrorNotice message={opening.error} retryable={false} onDismiss={opening.dismissError} />
            )}
            {opening.loading ? (
              <p className="loading">Loading the conversation…</p>
            ) : state.exchanges.length === 0 ? (
              <EmptyChat />
            ) : (
              <MessageList
                path={path}
                onRetry={retry}
                retryDisabled={retryDisabled}
                onRegenerate={regenerate}
                onEdit={edit}
                onShowVersion={showVersion}
                maxChars={limits.max_prompt_chars}
                waitingFor={socket.ready ? 'answer' : 'connection'}
                onFeedback={saveFeedback}
              />
            )}
          </div>
        </div>
        <div className="composer-area">
          <JumpToLatest visible={!scroll.atBottom} onJump={scroll.scrollToBottom} />
          {notices}
          {demo && <DemoNotice />}
          <SettingsPanel
            settings={conversationSettings}
            models={models}
            limits={limits}
            ownTemperature={socket.ready?.own_temperature ?? []}
          />
          <Composer
            draft={draft}
            onDraftChange={setDraft}
            onSend={send}
            blocker={blocker}
            queueNote={queueNote}
            streaming={streaming.length > 0}
            onStop={stopAnswers}
            stopping={streaming.length > 0 && streaming.every((exchange) => exchange.cancelRequested)}
            stopDisabled={!socket.ready}
            maxChars={limits.max_prompt_chars}
            models={models}
            model={model}
            onModelChange={conversationSettings.chooseModel}
            settingsButton={<SettingsButton settings={conversationSettings} />}
            textareaRef={textareaRef}
          />
        </div>
      </main>
      <div className="sr-only" role="status" aria-live="polite">
        {announcement}
      </div>
    </div>
  );
}

let requestCount = 0;

/** A request id unique across this client's tabs: time, a per-tab counter and a little randomness. */
function newRequestId() {
  requestCount += 1;
  return `r-${Date.now().toString(36)}-${requestCount}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * @param {{request: string, content: string, conversation?: string|null, model?: string|null,
 *   settings?: Record<string, unknown>}} fields settings: the conversation's generation settings (system, temperature,
 *   max_tokens), of which only those with a value go out
 * @returns {object} a `prompt` frame with only the optional fields that have a value
 */
function promptFrame({ request, content, conversation, model, settings = {} }) {
  const chosen = Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== null && value !== ''));
  return {
    type: 'prompt',
    request,
    content,
    ...(conversation ? { conversation } : {}),
    ...(model ? { model } : {}),
    ...chosen,
  };
}

/** Drops blank lines before and whitespace after the message; indentation of the first line is kept for code. */
function tidyPrompt(text) {
  return text.replace(/^(?:[ \t]*\n)+/, '').trimEnd();
}
