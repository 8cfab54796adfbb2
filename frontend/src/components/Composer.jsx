import { useLayoutEffect } from 'react';
import { useTouchTyping } from '../hooks/useTouchTyping.js';

/**
 * The message box. Enter sends, Shift+Enter starts a new line; on a touch screen without hover Enter is left alone
 * (a new line, as the on-screen keyboard says) and the Send button sends. The box grows with its text up to a limit.
 * What the person typed is only cleared by the caller once the prompt was taken (sent, or queued).
 *
 * While an answer streams, Stop takes Send's place, so that it stays where the hand is; a follow-up typed meanwhile
 * can still be sent (it is queued), with a Send button just before Stop.
 *
 * @param {Object} props
 * @param {string} props.draft
 * @param {(draft: string) => void} props.onDraftChange
 * @param {() => void} props.onSend
 * @param {string|null} props.blocker why the message cannot be taken, or null
 * @param {string|null} [props.queueNote] when it is taken but will wait, why (it is sent when the answer ends, …)
 * @param {boolean} [props.streaming] an answer is running: Stop is offered
 * @param {() => void} [props.onStop]
 * @param {boolean} [props.stopping] Stop was pressed and the answer has not ended yet
 * @param {boolean} [props.stopDisabled] no connection to send the cancel on
 * @param {number} props.maxChars
 * @param {string[]} props.models the picker shows when there is more than one
 * @param {string} props.model
 * @param {(model: string) => void} props.onModelChange
 * @param {import('react').ReactNode} [props.settingsButton] what opens the conversation's settings, before the model
 * @param {import('react').RefObject<HTMLTextAreaElement|null>} props.textareaRef
 */
export function Composer({
  draft,
  onDraftChange,
  onSend,
  blocker,
  queueNote = null,
  streaming = false,
  onStop,
  stopping = false,
  stopDisabled = false,
  maxChars,
  models,
  model,
  onModelChange,
  settingsButton = null,
  textareaRef,
}) {
  useAutosize(textareaRef, draft);
  const touch = useTouchTyping();

  function handleKeyDown(event) {
    if (touch || event.key !== 'Enter' || event.shiftKey || event.nativeEvent.isComposing) return;
    event.preventDefault();
    if (!blocker) onSend();
  }

  function handleSubmit(event) {
    event.preventDefault();
    if (!blocker) onSend();
  }

  const nearLimit = draft.length > maxChars * 0.8;
  const sendKey = touch ? 'Tap Send' : 'Enter';
  const hint =
    draft.trim() === ''
      ? touch
        ? 'Tap Send to send'
        : 'Enter to send, Shift+Enter for a new line'
      : (blocker ?? (queueNote ? `${sendKey} to queue it: ${lowerFirst(queueNote)}` : `${sendKey} to send`));
  const sendButton = (
    <button type="submit" className="button primary send-button" data-testid="send" disabled={blocker !== null}>
      Send
    </button>
  );
  return (
    <form className="composer" onSubmit={handleSubmit} aria-label="Send a message">
      <label htmlFor="composer-input" className="sr-only">
        Message
      </label>
      <textarea
        id="composer-input"
        ref={textareaRef}
        className="composer-input"
        data-testid="composer"
        rows={1}
        placeholder="Message the model…"
        value={draft}
        onChange={(event) => onDraftChange(event.target.value)}
        onKeyDown={handleKeyDown}
        enterKeyHint={touch ? 'enter' : 'send'}
        aria-describedby="composer-hint"
      />
      <div className="composer-bar">
        {settingsButton}
        {models.length > 1 && (
          <label className="model-picker">
            <span>Model</span>
            <select value={model} onChange={(event) => onModelChange(event.target.value)} data-testid="model">
              {models.map((name) => (
                <option key={name} value={name}>
                  {name}
                </option>
              ))}
            </select>
          </label>
        )}
        <p id="composer-hint" className="composer-hint">
          {hint}
          {nearLimit && (
            <span className="char-count" data-over={draft.length > maxChars ? 'true' : undefined}>
              {' '}
              ({draft.length.toLocaleString()} / {maxChars.toLocaleString()})
            </span>
          )}
        </p>
        {streaming ? (
          <>
            {draft.trim() !== '' && sendButton}
            <button
              type="button"
              className="button primary stop-button"
              data-testid="stop"
              onClick={onStop}
              disabled={stopDisabled || stopping}
              aria-label="Stop"
              title="Stop the answer (Esc)"
            >
              <span className="stop-icon" aria-hidden="true" />
              <span aria-hidden="true">{stopping ? 'Stopping…' : 'Stop'}</span>
            </button>
          </>
        ) : (
          sendButton
        )}
      </div>
    </form>
  );
}

function lowerFirst(text) {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/** Fits the textarea's height to its content; CSS caps it, after which it scrolls. */
function useAutosize(textareaRef, value) {
  useLayoutEffect(() => {
    const textarea = textareaRef.current;
    if (!textarea) return;
    textarea.style.height = 'auto';
    textarea.style.height = `${textarea.scrollHeight}px`;
  }, [textareaRef, value]);
}
