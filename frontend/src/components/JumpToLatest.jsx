/**
 * Shown while the person reads further up the conversation: takes them to the newest text and keeps them there.
 * @param {{visible: boolean, onJump: () => void}} props
 */
export function JumpToLatest({ visible, onJump }) {
  if (!visible) return null;
  return (
    <button type="button" className="button small jump-to-latest" data-testid="jump-to-latest" onClick={onJump}>
      <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false">
        <path d="M12 5v14M6 13l6 6 6-6" fill="none" stroke="currentColor" strokeWidth="2" />
      </svg>
      Jump to latest
    </button>
  );
}
