import { useEffect, useRef } from 'react';
import { resumeDue } from '../state/selectors.js';

/** The first protocol whose `resume` takes `pos`, the place in the stream's record to replay after. */
const PROTOCOL_WITH_POS = 2;

/**
 * Sends the `resume` frames the reducer asks for (`needsResume`): after a reconnect for every answer still streaming,
 * for a running answer of a conversation just opened (after a reload, too), and when a gap shows up. Each goes out
 * once the connection is ready, with `after` = the last seq the exchange has and, to a server of protocol 2 or later,
 * `pos` = the last place in the stream's record it has (so that reasoning and tool calls are replayed too, none
 * twice); `resumeSent` then clears the request.
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
    const withPos = (ready.protocol ?? 1) >= PROTOCOL_WITH_POS;
    for (const exchange of exchanges) {
      const due = resumeDue(exchange);
      if (!due || sent.current.exchanges.has(exchange)) continue;
      const { pos, ...after } = due;
      const resume = withPos && pos !== undefined ? { ...after, pos } : after;
      if (!send({ type: 'resume', ...resume })) return;
      sent.current.exchanges.add(exchange);
      dispatch({ type: 'resumeSent', ...resume });
    }
  }, [ready, exchanges, send, dispatch]);
}
