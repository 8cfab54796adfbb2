/**
 * What the person asked, as they typed it (plain text, line breaks kept).
 * @param {{exchange: import('../state/types.js').Exchange}} props
 */
export function UserMessage({ exchange }) {
  const notSent = exchange.status === 'failed' && exchange.stream === null;
  return (
    <article className="message user" data-testid="message-user" aria-label="You said">
      <div className="bubble">{exchange.prompt}</div>
      {notSent && <p className="message-note">not sent</p>}
    </article>
  );
}
