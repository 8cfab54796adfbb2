import { AssistantMessage, PendingAnswer } from './AssistantMessage.jsx';
import { UserMessage } from './UserMessage.jsx';

/**
 * The conversation: each exchange as the person's message and the answer.
 * @param {{exchanges: import('../state/types.js').Exchange[],
 *   onRetry: (exchange: import('../state/types.js').Exchange) => void, retryDisabled: boolean,
 *   waitingFor?: 'connection'|'answer',
 *   onFeedback?: (stream: string, feedback: {rating: 'up'|'down'|null, comment: string}) => Promise<unknown>}} props
 *   retryDisabled is true while there is no connection to send the frame on; waitingFor is what a queued prompt
 *   waits for; onFeedback saves the person's thumbs up or down on an ended answer
 */
export function MessageList({ exchanges, onRetry, retryDisabled, waitingFor = 'answer', onFeedback }) {
  return (
    <ol className="message-list" aria-label="Messages">
      {exchanges.map((exchange) => (
        <li key={exchange.key} className="exchange">
          <UserMessage exchange={exchange} waitingFor={waitingFor} />
          {exchange.status === 'pending' && <PendingAnswer />}
          {exchange.stream !== null && (
            <AssistantMessage
              exchange={exchange}
              onRetry={onRetry}
              retryDisabled={retryDisabled}
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
