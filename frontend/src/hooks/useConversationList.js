import { useCallback, useEffect, useState } from 'react';
import { fetchConversations } from '../api.js';

/**
 * The sidebar's list, fetched again whenever `version` changes (the reducer bumps it after each `done` and when a
 * new conversation starts) or when `reload` is called.
 *
 * @param {string} conversationsUrl
 * @param {number} version
 * @returns {{conversations: import('../api.js').ConversationSummary[], status: 'loading'|'ready'|'error',
 *   reload: () => void}}
 */
export function useConversationList(conversationsUrl, version) {
  const [conversations, setConversations] = useState(/** @type {import('../api.js').ConversationSummary[]} */ ([]));
  const [status, setStatus] = useState(/** @type {'loading'|'ready'|'error'} */ ('loading'));
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    fetchConversations(conversationsUrl, { signal: controller.signal })
      .then((items) => {
        setConversations(items);
        setStatus('ready');
      })
      .catch(() => {
        // Keep the list already shown: a failed refresh should not empty the sidebar.
        if (!controller.signal.aborted) setStatus('error');
      });
    return () => controller.abort();
  }, [conversationsUrl, version, attempt]);

  const reload = useCallback(() => setAttempt((count) => count + 1), []);
  return { conversations, status, reload };
}
