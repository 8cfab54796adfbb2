/** The words for a state whose name is not already what a person would read. */
const WORDS = { loginRequired: 'logged out', notAllowed: 'not allowed' };

/**
 * The socket's state as a coloured dot and one word or two. The words (connecting, connected, reconnecting, logged
 * out) are the whole text of the `connection-status` element, so tests and people read the same thing.
 * @param {{status: import('../socket/useChatSocket.js').ConnectionStatus}} props
 */
export function ConnectionStatus({ status }) {
  return (
    <span className="connection" data-state={status}>
      <span className="connection-dot" aria-hidden="true" />
      <span className="sr-only">Connection: </span>
      <span data-testid="connection-status">{WORDS[status] ?? status}</span>
    </span>
  );
}
