import { useLayoutEffect, useRef } from 'react';
import { nextQueued } from '../state/selectors.js';
import { pathEnd } from '../state/versions.js';

/**
 * Sends queued prompts (see `queueReason`) one at a time, each as soon as it may go: once the socket is ready (after
 * the first connection or a reconnect) and no answer is running, so a follow-up goes out after the answer it follows
 * has ended, into the same conversation, after the exchange shown last. `send` puts the prompt on the socket (with
 * that exchange's stream id as its parent); true means it went, and `queuedPromptSent` then marks it pending. It runs before the browser paints, so a prompt that can go at once is
 * never shown as queued.
 *
 * Each prompt goes out at most once: the request ids sent are remembered here too, because React may render the
 * state again (an urgent update, a click) before it has applied `queuedPromptSent`.
 *
 * @param {Object} options
 * @param {import('../state/types.js').ReadyFrame|null} options.ready
 * @param {import('../state/types.js').ChatState} options.state
 * @param {(exchange: import('../state/types.js').Exchange, parent: string|null) => boolean} options.send
 * @param {(action: object) => void} options.dispatch
 */
export function usePromptQueue({ ready, state, send, dispatch }) {
  const sent = useRef(new Set());
  useLayoutEffect(() => {
    if (!ready) return;
    const next = nextQueued(state);
    if (!next || sent.current.has(next.request)) return;
    const parent = pathEnd(state);
    if (!send(next, parent)) return;
    sent.current.add(next.request);
    dispatch({ type: 'queuedPromptSent', key: next.key, conversation: state.conversation, parent });
  }, [ready, state, send, dispatch]);
}
