/**
 * The socket's state as a coloured dot and one word. The word itself (connecting, connected, reconnecting) is the
 * whole text of the `connection-status` element, so tests and people read the same thing.
 * @param {{status: import('../socket/useChatSocket.js').ConnectionStatus}} props
 */
export function ConnectionStatus({ status }) {
  return (
    <span className="connection" data-state={status}>
      <span className="connection-dot" aria-hidden="true" />
      <span className="sr-only">Connection: </span>
      <span data-testid="connection-status">{status}</span>
    </span>
  );
}
