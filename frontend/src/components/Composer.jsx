import { useLayoutEffect } from 'react';

/**
 * The message box. Enter sends, Shift+Enter starts a new line; the box grows with its text up to a limit.
 * What the person typed is only cleared by the caller once the prompt was really sent.
 *
 * @param {Object} props
 * @param {string} props.draft
 * @param {(draft: string) => void} props.onDraftChange
 * @param {() => void} props.onSend
 * @param {string|null} props.blocker why sending is not possible now, or null
 * @param {number} props.maxChars
 * @param {string[]} props.models the picker shows when there is more than one
 * @param {string} props.model
 * @param {(model: string) => void} props.onModelChange
 * @param {import('react').RefObject<HTMLTextAreaElement|null>} props.textareaRef
 */
export function Composer({
  draft,
  onDraftChange,
  onSend,
  blocker,
  maxChars,
  models,
  model,
  onModelChange,
  textareaRef,
}) {
  useAutosize(textareaRef, draft);

  function handleKeyDown(event) {
    if (event.key !== 'Enter' || event.shiftKey || event.nativeEvent.isComposing) return;
    event.preventDefault();
    if (!blocker) onSend();
  }

  function handleSubmit(event) {
    event.preventDefault();
    if (!blocker) onSend();
  }

  const nearLimit = draft.length > maxChars * 0.8;
  const hint = draft.trim() === '' ? 'Enter to send, Shift+Enter for a new line' : (blocker ?? 'Enter to send');
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
        aria-describedby="composer-hint"
      />
      <div className="composer-bar">
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
        <button type="submit" className="button primary send-button" data-testid="send" disabled={blocker !== null}>
          Send
        </button>
      </div>
    </form>
  );
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
