import { AssistantMessage, PendingAnswer } from './AssistantMessage.jsx';
import { UserMessage } from './UserMessage.jsx';

/**
 * The conversation: each exchange as the person's message and the answer.
 * @param {{exchanges: import('../state/types.js').Exchange[], onStop: (stream: string) => void,
 *   onRetry: (exchange: import('../state/types.js').Exchange) => void, retryDisabled: boolean,
 *   stopDisabled: boolean}} props stopDisabled and retryDisabled are true while
 *   there is no connection to send the frame on
 */
export function MessageList({ exchanges, onStop, onRetry, retryDisabled, stopDisabled }) {
  return (
    <ol className="message-list" aria-label="Messages">
      {exchanges.map((exchange) => (
        <li key={exchange.key} className="exchange">
          <UserMessage exchange={exchange} />
          {exchange.status === 'pending' && <PendingAnswer />}
          {exchange.stream !== null && (
            <AssistantMessage
              exchange={exchange}
              onStop={onStop}
              onRetry={onRetry}
              retryDisabled={retryDisabled}
              stopDisabled={stopDisabled}
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
