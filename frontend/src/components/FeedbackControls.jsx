import { useEffect, useId, useRef, useState } from 'react';

/** The longest comment the server keeps (docs/protocol.md). */
export const COMMENT_CHARS = 2000;

const THUMB_UP =
  'M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3';
const THUMB_DOWN =
  'M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7' +
  'a2.31 2.31 0 0 1-2.33 2H17';

const CHOICES = [
  { rating: 'up', name: 'Good answer', icon: THUMB_UP },
  { rating: 'down', name: 'Bad answer', icon: THUMB_DOWN },
];

/**
 * Thumbs up and thumbs down on an ended answer ("Good answer", "Bad answer"; pressed is the rating given), and a
 * small optional comment box: it opens by itself after a thumbs down, and from "Add a comment" after either. Pressing
 * the pressed thumb again takes the feedback back. While a rating is being saved it shows as pressed; when saving
 * fails it goes back to what the server has, and says so.
 *
 * @param {{feedback: import('../state/types.js').Feedback|null,
 *   onSave: (feedback: {rating: 'up'|'down'|null, comment: string}) => Promise<unknown>}} props
 */
export function FeedbackControls({ feedback, onSave }) {
  const [saving, setSaving] = useState(/** @type {{rating: 'up'|'down'|null}|null} */ (null));
  const [failed, setFailed] = useState(false);
  const [commenting, setCommenting] = useState(false);
  const [draft, setDraft] = useState('');
  const commentRef = useRef(/** @type {HTMLTextAreaElement|null} */ (null));
  const groupRef = useRef(/** @type {HTMLDivElement|null} */ (null));
  const commentId = useId();
  const rating = saving ? saving.rating : (feedback?.rating ?? null);
  const comment = feedback?.comment ?? '';

  useEffect(() => {
    if (commenting) commentRef.current?.focus();
  }, [commenting]);

  /** @returns {Promise<boolean>} whether the server kept it */
  async function send(next) {
    if (saving) return false;
    setSaving({ rating: next.rating });
    setFailed(false);
    try {
      await onSave(next);
      return true;
    } catch {
      setFailed(true);
      return false;
    } finally {
      setSaving(null);
    }
  }

  function openComment() {
    setDraft(comment);
    setCommenting(true);
  }

  function closeComment() {
    setCommenting(false);
    groupRef.current?.querySelector('[aria-pressed="true"]')?.focus();
  }

  async function rate(choice) {
    if (saving) return;
    if (feedback?.rating === choice) {
      setCommenting(false);
      await send({ rating: null, comment: '' });
      return;
    }
    if ((await send({ rating: choice, comment })) && choice === 'down') openComment();
  }

  async function saveComment(event) {
    event.preventDefault();
    if (!feedback || saving) return;
    if (await send({ rating: feedback.rating, comment: draft.trim() })) closeComment();
  }

  return (
    <>
      <div className="feedback" role="group" aria-label="Feedback" ref={groupRef} data-testid="feedback">
        {CHOICES.map((choice) => (
          <button
            key={choice.rating}
            type="button"
            className="button small ghost feedback-button"
            aria-label={choice.name}
            title={choice.name}
            aria-pressed={rating === choice.rating}
            data-rating={choice.rating}
            onClick={() => rate(choice.rating)}
          >
            <svg viewBox="0 0 24 24" width="14" height="14" aria-hidden="true" focusable="false">
              <path
                d={choice.icon}
                fill={rating === choice.rating ? 'currentColor' : 'none'}
                fillOpacity={rating === choice.rating ? 0.25 : undefined}
                stroke="currentColor"
                strokeWidth="2"
                strokeLinejoin="round"
              />
            </svg>
          </button>
        ))}
        {feedback && !commenting && (
          <button type="button" className="button small ghost feedback-comment-open" onClick={openComment}>
            {comment ? 'Edit comment' : 'Add a comment'}
          </button>
        )}
        {failed && (
          <span className="feedback-error" role="alert">
            Your feedback was not saved. Try again.
          </span>
        )}
      </div>
      {commenting && feedback && (
        <form className="feedback-form" onSubmit={saveComment} aria-label="Comment on the answer">
          <label htmlFor={commentId}>
            {feedback.rating === 'down' ? 'What was wrong with it? (optional)' : 'What was good about it? (optional)'}
          </label>
          <textarea
            id={commentId}
            ref={commentRef}
            className="feedback-comment"
            rows={2}
            maxLength={COMMENT_CHARS}
            value={draft}
            onChange={(event) => setDraft(event.target.value)}
          />
          <div className="feedback-form-actions">
            <button type="submit" className="button small primary" disabled={saving !== null}>
              Save comment
            </button>
            <button type="button" className="button small ghost" onClick={closeComment}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </>
  );
}
