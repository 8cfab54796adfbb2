import { memo } from 'react';
import { finishNote } from '../state/selectors.js';
import { AnswerParts } from './AnswerParts.jsx';
import { AnswerStats } from './AnswerStats.jsx';
import { CopyButton } from './CopyButton.jsx';
import { ErrorNotice } from './ErrorNotice.jsx';
import { FeedbackControls } from './FeedbackControls.jsx';
import { RegenerateIcon } from './icons.jsx';

/**
 * One answer: its parts (thinking, text, tool calls), the server's word that it is overloaded while it streams, then
 * how it ended (note, stats or error), a Copy button for its markdown and, once it has ended, Regenerate and thumbs
 * up and down (when `onRegenerate` and `onFeedback` are given). Stop is in the composer, where Send is.
 *
 * @param {{exchange: import('../state/types.js').Exchange,
 *   onRetry: (exchange: import('../state/types.js').Exchange) => void, retryDisabled: boolean,
 *   onRegenerate?: (exchange: import('../state/types.js').Exchange) => void,
 *   onFeedback?: (stream: string, feedback: {rating: 'up'|'down'|null, comment: string}) => Promise<unknown>}} props
 *   retryDisabled also disables Regenerate: both send at once
 */
export const AssistantMessage = memo(function AssistantMessage({
  exchange,
  onRetry,
  retryDisabled,
  onRegenerate,
  onFeedback,
}) {
  const streaming = exchange.status === 'streaming';
  const note = finishNote(exchange);
  return (
    <article
      className="message assistant"
      data-testid="message-assistant"
      data-status={exchange.status}
      data-stream={exchange.stream ?? undefined}
      data-seq={exchange.lastSeq}
      data-pos={exchange.lastPos ?? undefined}
      aria-label="Answer"
    >
      <AnswerParts exchange={exchange} />
      {exchange.error && (
        <ErrorNotice
          message={exchange.error.message}
          retryable={exchange.error.retryable}
          onRetry={() => onRetry(exchange)}
          retryDisabled={retryDisabled}
        />
      )}
      <div className="answer-footer">
        {streaming && exchange.busy && (
          <span className="answer-note" data-testid="busy-note">
            {exchange.busy}
          </span>
        )}
        {note && (
          <span className="answer-note" data-testid="answer-note">
            {note}
          </span>
        )}
        {!streaming && exchange.answer !== '' && <CopyButton text={exchange.answer} />}
        {!streaming && onRegenerate && exchange.stream && !exchange.error?.retryable && (
          <RegenerateButton disabled={retryDisabled} onClick={() => onRegenerate(exchange)} />
        )}
        {!streaming && onFeedback && exchange.stream && (
          <FeedbackControls
            feedback={exchange.feedback}
            onSave={(feedback) => onFeedback(/** @type {string} */ (exchange.stream), feedback)}
          />
        )}
        {!streaming && <AnswerStats exchange={exchange} />}
      </div>
    </article>
  );
});

/** Asks the question again for a new version of the answer (an error's Retry does the same). */
function RegenerateButton({ disabled, onClick }) {
  return (
    <button
      type="button"
      className="button small ghost message-regenerate"
      aria-label="Regenerate"
      title="Regenerate"
      disabled={disabled}
      onClick={onClick}
    >
      <RegenerateIcon />
    </button>
  );
}

/** Shown after the person sent a prompt and before the server accepted it. */
export function PendingAnswer() {
  return (
    <div className="message assistant pending" aria-label="Sending">
      <span className="typing" aria-hidden="true">
        <span />
        <span />
        <span />
      </span>
      <span className="sr-only">Sending…</span>
    </div>
  );
}
