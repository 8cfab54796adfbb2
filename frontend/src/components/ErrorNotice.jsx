/**
 * An error from the server, in its own words, with Retry when sending again may work.
 * @param {{message: string, retryable: boolean, onRetry?: () => void, retryDisabled?: boolean,
 *   onDismiss?: () => void}} props
 */
export function ErrorNotice({ message, retryable, onRetry, retryDisabled = false, onDismiss }) {
  return (
    <div className="error-notice" data-testid="error">
      <span className="error-icon" aria-hidden="true">
        !
      </span>
      <p className="error-message">{message}</p>
      <div className="error-actions">
        {retryable && onRetry && (
          <button type="button" className="button small" data-testid="retry" onClick={onRetry} disabled={retryDisabled}>
            Retry
          </button>
        )}
        {onDismiss && (
          <button type="button" className="button small ghost" onClick={onDismiss} aria-label="Dismiss this error">
            Dismiss
          </button>
        )}
      </div>
    </div>
  );
}
