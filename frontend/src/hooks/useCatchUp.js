import { useEffect, useRef } from 'react';
import { fetchConversation } from '../api.js';
import { useStableCallback } from './useStableCallback.js';

/** Wait this long after a gap shows up, so that a burst of frames settles before the fetch. */
const GAP_SETTLE_MS = 300;

/**
 * Fetches the saved copy of the open conversation when the socket's copy fell behind: after a reconnect while an
 * answer was streaming (its `done` may have been missed), and when deltas went missing (a gap). The reducer's
 * `conversationSynced` decides what to take from it.
 *
 * @param {Object} options
 * @param {string} options.conversationsUrl
 * @param {{current: import('../state/types.js').ChatState}} options.stateRef
 * @param {(action: object) => void} options.dispatch
 * @param {import('../state/types.js').Exchange[]} options.exchanges the exchanges shown now
 * @param {object|null} options.ready the socket's `ready` frame (changes on every new connection)
 * @returns {() => void} the catch-up itself, for a "load the full answer" button
 */
export function useCatchUp({ conversationsUrl, stateRef, dispatch, exchanges, ready }) {
  const catchUp = useStableCallback(async () => {
    const id = stateRef.current.conversation;
    if (!id) return;
    try {
      dispatch({ type: 'conversationSynced', detail: await fetchConversation(conversationsUrl, id) });
    } catch {
      // The gap note stays, with its button, so the person can try again.
    }
  });

  // Changes when a gap appears, moves, or its stream ends: each is worth one more fetch, and nothing else is.
  const gapKey = exchanges
    .filter((exchange) => exchange.gap)
    .map((exchange) => `${exchange.stream}:${exchange.gap?.after}:${exchange.status}`)
    .join(' ');
  useEffect(() => {
    if (!gapKey) return undefined;
    const timer = setTimeout(catchUp, GAP_SETTLE_MS);
    return () => clearTimeout(timer);
  }, [gapKey, catchUp]);

  const connectedBefore = useRef(false);
  useEffect(() => {
    if (!ready) return;
    const streaming = stateRef.current.exchanges.some((exchange) => exchange.status === 'streaming');
    if (connectedBefore.current && streaming) catchUp();
    connectedBefore.current = true;
  }, [ready, catchUp, stateRef]);

  return catchUp;
}
