import { useEffect, useRef } from 'react';
import { resumeDue } from '../state/selectors.js';

/**
 * Sends the `resume` frames the reducer asks for (`needsResume`): after a reconnect for every answer still streaming,
 * for a running answer of a conversation just opened (after a reload, too), and when a gap shows up. Each goes out
 * once the connection is ready, with `after` = the last seq the exchange has; `resumeSent` then clears the request.
 *
 * @param {Object} options
 * @param {import('../state/types.js').ReadyFrame|null} options.ready the `ready` of the open connection; a new object
 *   on every connection, null while there is none
 * @param {import('../state/types.js').Exchange[]} options.exchanges
 * @param {(frame: object) => boolean} options.send
 * @param {(action: object) => void} options.dispatch
 */
export function useResume({ ready, exchanges, send, dispatch }) {
  // The exchanges (as objects) a resume went out for on this connection, in case React renders them again before it
  // has applied `resumeSent` (an urgent update, a click, can be rendered ahead of it).
  const sent = useRef({ ready: /** @type {object|null} */ (null), exchanges: new WeakSet() });
  useEffect(() => {
    if (!ready) return;
    if (sent.current.ready !== ready) sent.current = { ready, exchanges: new WeakSet() };
    for (const exchange of exchanges) {
      const due = resumeDue(exchange);
      if (!due || sent.current.exchanges.has(exchange)) continue;
      if (!send({ type: 'resume', ...due })) return;
      sent.current.exchanges.add(exchange);
      dispatch({ type: 'resumeSent', ...due });
    }
  }, [ready, exchanges, send, dispatch]);
}
