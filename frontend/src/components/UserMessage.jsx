import { CopyButton } from './CopyButton.jsx';

/** What a queued prompt waits for, in the person's words. */
const QUEUED_NOTE = 'queued: sent when the answer above ends';

/**
 * What the person asked, as they typed it (plain text, line breaks kept), with a Copy button. A prompt taken but not
 * sent yet says so: it waits for the connection, or for the answer before it to end.
 * @param {{exchange: import('../state/types.js').Exchange, waitingFor?: 'connection'|'answer'}} props
 */
export function UserMessage({ exchange, waitingFor = 'answer' }) {
  const notSent = exchange.status === 'failed' && exchange.stream === null;
  const queued = exchange.status === 'queued';
  return (
    <article
      className="message user"
      data-testid="message-user"
      data-status={queued ? 'queued' : undefined}
      aria-label="You said"
    >
      <div className="bubble">{exchange.prompt}</div>
      <div className="message-actions">
        {queued && (
          <p className="message-note queued-note" data-testid="queued-note">
            {waitingFor === 'connection' ? 'waiting for the connection: sent once connected' : QUEUED_NOTE}
          </p>
        )}
        {notSent && <p className="message-note">not sent</p>}
        <CopyButton text={exchange.prompt} />
      </div>
    </article>
  );
}
