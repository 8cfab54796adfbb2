import { useCallback, useEffect, useRef, useState } from 'react';
import { backoffDelay } from './backoff.js';

/** WebSocket.OPEN, written out so that a test's fake transport need not define the constant. */
const OPEN = 1;
/** The close code of a worker that is restarting (docs/protocol.md): another worker answers at once. */
const CLOSE_RESTARTING = 4012;
/** The close code of a socket without the login the server requires (docs/protocol.md): trying again cannot help. */
export const CLOSE_LOGIN_REQUIRED = 4401;
/** The close code of a logged-in user the server's rule does not let chat (docs/protocol.md): neither can help. */
export const CLOSE_NOT_ALLOWED = 4403;
/** The most a reconnect after a restart waits, spread so that every socket of the worker does not come back at once. */
const RESTART_SPREAD_MS = 250;

/** @typedef {'connecting'|'connected'|'reconnecting'|'loginRequired'|'notAllowed'} ConnectionStatus */
/** @typedef {import('../state/types.js').ReadyFrame} ReadyFrame */

/**
 * The part of the browser's WebSocket this hook uses, so that tests can hand in a fake.
 * @typedef {Object} SocketLike
 * @property {number} readyState
 * @property {(data: string) => void} send
 * @property {() => void} close
 * @property {(() => void)|null} onopen
 * @property {((event: {data: any}) => void)|null} onmessage
 * @property {((event?: {code?: number}) => void)|null} onclose
 * @property {(() => void)|null} onerror
 */

/**
 * What the hook gives the view.
 * @typedef {Object} ChatSocket
 * @property {ConnectionStatus} status `connecting` before the first connection opened, `connected` while a socket is
 *   open, `reconnecting` after one dropped (until the next one opens), `loginRequired` once the server closed it for
 *   want of a login (4401), `notAllowed` once it closed it because this user may not chat (4403): the hook then
 *   stops reconnecting
 * @property {ReadyFrame|null} ready the `ready` frame of the open connection; null until it arrives and after a drop,
 *   so `ready !== null` means "prompts can be sent now"
 * @property {(frame: object) => boolean} send writes a frame as JSON; false (and nothing sent) when no socket is open,
 *   so a caller can keep what the person typed
 */

/** @param {string} url @returns {SocketLike} */
function openWebSocket(url) {
  return new WebSocket(url);
}

/**
 * Owns the chat's one WebSocket: opens it, hands every frame to `onFrame`, and reconnects after a drop with capped,
 * jittered exponential backoff (reset once the server says `ready` again). Going back online retries at once, and so
 * does a close with code 4012 (the worker is restarting: it has sent every stream's end, and another worker answers).
 * A close with code 4401 (the login has gone) ends it: every attempt would be refused the same way until the person
 * logs in again, which reloads the page. So does 4403 (this user may not chat; the `error` before it says so).
 *
 * @param {Object} options
 * @param {string} options.url the ws:// or wss:// address
 * @param {(frame: any) => void} options.onFrame called with each parsed frame, `ready` included
 * @param {(close: {code: number|undefined}) => void} [options.onDisconnect] called when a socket closes (not when
 *   the hook unmounts), with the close code
 * @param {(url: string) => SocketLike} [options.createSocket] the transport; the browser's WebSocket by default
 * @param {() => number} [options.random] jitter source, replaceable in tests
 * @returns {ChatSocket}
 */
export function useChatSocket({ url, onFrame, onDisconnect, createSocket = openWebSocket, random = Math.random }) {
  const [status, setStatus] = useState(/** @type {ConnectionStatus} */ ('connecting'));
  const [ready, setReady] = useState(/** @type {ReadyFrame|null} */ (null));
  const socketRef = useRef(/** @type {SocketLike|null} */ (null));
  const handlers = useRef({ onFrame, onDisconnect });
  useEffect(() => {
    handlers.current = { onFrame, onDisconnect };
  });

  useEffect(() => {
    let attempt = 0;
    let stopped = false;
    /** @type {ReturnType<typeof setTimeout>|null} */
    let retryTimer = null;

    function connect() {
      retryTimer = null;
      let socket;
      try {
        socket = createSocket(url);
      } catch {
        scheduleRetry();
        return;
      }
      socketRef.current = socket;
      socket.onopen = () => setStatus('connected');
      socket.onmessage = (event) => receive(event.data);
      socket.onclose = (event) => dropped(socket, event?.code);
      socket.onerror = () => {}; // a close always follows; that is where the retry starts
    }

    function receive(data) {
      const frame = parseFrame(data);
      if (!frame) return;
      if (frame.type === 'ready') {
        attempt = 0;
        setReady(frame);
      }
      handlers.current.onFrame?.(frame);
    }

    function dropped(socket, code) {
      if (stopped || socketRef.current !== socket) return;
      socketRef.current = null;
      setReady(null);
      handlers.current.onDisconnect?.({ code });
      if (code === CLOSE_LOGIN_REQUIRED || code === CLOSE_NOT_ALLOWED) {
        setStatus(code === CLOSE_LOGIN_REQUIRED ? 'loginRequired' : 'notAllowed');
        return;
      }
      scheduleRetry(code === CLOSE_RESTARTING ? Math.round(random() * RESTART_SPREAD_MS) : undefined);
    }

    function scheduleRetry(delay = backoffDelay(attempt, random)) {
      setStatus('reconnecting');
      retryTimer = setTimeout(connect, delay);
      attempt += 1;
    }

    function retryNow() {
      if (retryTimer === null) return;
      clearTimeout(retryTimer);
      connect();
    }

    connect();
    window.addEventListener('online', retryNow);
    return () => {
      stopped = true;
      window.removeEventListener('online', retryNow);
      if (retryTimer !== null) clearTimeout(retryTimer);
      const socket = socketRef.current;
      socketRef.current = null;
      socket?.close();
    };
  }, [url, createSocket, random]);

  const send = useCallback((/** @type {object} */ frame) => {
    const socket = socketRef.current;
    if (!socket || socket.readyState !== OPEN) return false;
    try {
      socket.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }, []);

  return { status, ready, send };
}

/**
 * A server frame, or null for anything that is not a JSON object with a string `type` (ignored, never fatal).
 * @param {unknown} data
 */
export function parseFrame(data) {
  if (typeof data !== 'string') return null;
  try {
    const frame = JSON.parse(data);
    return frame && typeof frame === 'object' && typeof frame.type === 'string' ? frame : null;
  } catch {
    return null;
  }
}
