import { AssistantMessage, PendingAnswer } from './AssistantMessage.jsx';
import { UserMessage } from './UserMessage.jsx';

/**
 * The conversation as shown: each exchange of the path (see `versions.js`) as the person's message and the answer,
 * with the switch between its versions.
 * @param {{path: import('../state/versions.js').ShownExchange[],
 *   onRetry: (exchange: import('../state/types.js').Exchange) => void, retryDisabled: boolean,
 *   onRegenerate?: (exchange: import('../state/types.js').Exchange) => void,
 *   onEdit?: (exchange: import('../state/types.js').Exchange, content: string) => boolean,
 *   onShowVersion?: (exchange: import('../state/types.js').Exchange) => void,
 *   waitingFor?: 'connection'|'answer', maxChars?: number,
 *   onFeedback?: (stream: string, feedback: {rating: 'up'|'down'|null, comment: string}) => Promise<unknown>}} props
 *   retryDisabled is true while a prompt would not go out at once (no connection, or an answer running): Retry,
 *   Regenerate and Edit wait for it; waitingFor is what a queued prompt waits for; onFeedback saves the person's
 *   thumbs up or down on an ended answer
 */
export function MessageList({
  path,
  onRetry,
  retryDisabled,
  onRegenerate,
  onEdit,
  onShowVersion,
  waitingFor = 'answer',
  maxChars,
  onFeedback,
}) {
  return (
    <ol className="message-list" aria-label="Messages">
      {path.map(({ exchange, version, versions }) => (
        <li key={exchange.key} className="exchange">
          <UserMessage
            exchange={exchange}
            waitingFor={waitingFor}
            version={version}
            versions={versions}
            onShowVersion={onShowVersion}
            onEdit={onEdit}
            editDisabled={retryDisabled}
            maxChars={maxChars}
          />
          {exchange.status === 'pending' && <PendingAnswer />}
          {exchange.stream !== null && (
            <AssistantMessage
              exchange={exchange}
              onRetry={onRetry}
              retryDisabled={retryDisabled}
              onRegenerate={onRegenerate}
              onFeedback={onFeedback}
            />
          )}
        </li>
      ))}
    </ol>
  );
}
/** What a new chat shows before the first message. */
export function EmptyChat() {
  return (
    <div className="empty-chat">
      <h2>What would you like to know?</h2>
      <p>Answers appear as they are written. Press Enter to send, Shift+Enter for a new line.</p>
    </div>
  );
}
