import { useEffect, useRef, useState } from 'react';
import { fetchConversation } from '../api.js';
import { useLatest } from './useLatest.js';
import { useStableCallback } from './useStableCallback.js';

/** The conversation id in the address (`#<uuid>`), or '' for a new chat. */
export function readHash() {
  const id = decodeURIComponent(window.location.hash.slice(1));
  return /^[0-9a-f-]{8,64}$/i.test(id) ? id : '';
}

function addressWithoutHash() {
  return window.location.pathname + window.location.search;
}

/**
 * Opening an old conversation and starting a new chat, kept in step with the address: `#<id>` names the open
 * conversation, so reloading the page or pressing Back shows the same one, and the sidebar's entries are plain links.
 *
 * @param {Object} options
 * @param {string} options.conversationsUrl
 * @param {string|null} options.conversation the open conversation, from the reducer
 * @param {(action: object) => void} options.dispatch
 * @param {() => void} [options.onNewChat] called after a new chat was started by the person
 * @param {(detail: import('../api.js').ConversationDetail) => void} [options.onLoaded] called with the detail of a
 *   conversation just opened, after the reducer has it (its settings are not the reducer's)
 * @param {() => import('../state/types.js').PersistedStream[]} [options.persistedStreams] what this tab kept of
 *   streams that were running (before a reload), handed to the reducer with the conversation
 * @returns {{loading: boolean, error: string|null, dismissError: () => void, newChat: () => void}}
 */
export function useConversationOpener({
  conversationsUrl,
  conversation,
  dispatch,
  onNewChat,
  onLoaded,
  persistedStreams,
}) {
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState(/** @type {string|null} */ (null));
  const latestLoad = useRef(0);
  const current = useLatest(conversation);

  const open = useStableCallback(async (/** @type {string} */ id) => {
    const load = ++latestLoad.current;
    setError(null);
    setLoading(true);
    try {
      const detail = await fetchConversation(conversationsUrl, id);
      if (load === latestLoad.current) {
        dispatch({ type: 'conversationLoaded', detail, persisted: persistedStreams?.() ?? [] });
        onLoaded?.(detail);
      }
    } catch (failure) {
      if (load !== latestLoad.current) return;
      setError(
        failure?.status === 404 ? 'That conversation does not exist any more.' : 'Could not open that conversation.',
      );
      const shown = current.current;
      window.history.replaceState(null, '', shown ? `#${shown}` : addressWithoutHash());
    } finally {
      if (load === latestLoad.current) setLoading(false);
    }
  });

  /** Forgets the open conversation; a load still in flight is ignored when it lands. */
  const clear = useStableCallback(() => {
    latestLoad.current += 1;
    setLoading(false);
    setError(null);
    dispatch({ type: 'chatCleared' });
  });

  const newChat = useStableCallback(() => {
    clear();
    if (window.location.hash) window.history.pushState(null, '', addressWithoutHash());
    onNewChat?.();
  });

  useEffect(() => {
    function followAddress() {
      const id = readHash();
      if (id && id !== current.current) open(id);
      else if (!id && current.current) clear();
    }
    followAddress();
    window.addEventListener('hashchange', followAddress);
    window.addEventListener('popstate', followAddress);
    return () => {
      window.removeEventListener('hashchange', followAddress);
      window.removeEventListener('popstate', followAddress);
    };
  }, [open, clear, current]);

  useEffect(() => {
    // A new chat gets its id from its first `start`: name it in the address without adding a history entry.
    if (conversation && readHash() !== conversation) window.history.replaceState(null, '', `#${conversation}`);
  }, [conversation]);

  return { loading, error, dismissError: () => setError(null), newChat };
}
