/**
 * The one notice of a login that has gone (the socket was closed with 4401): what happened and a "Log in" link that
 * comes back to this conversation afterwards.
 * @param {{message: string, loginUrl: string|null, onDismiss?: () => void}} props
 */
export function LoginNotice({ message, loginUrl, onDismiss }) {
  return (
    <div className="error-notice login-notice" data-testid="login-notice" role="alert">
      <span className="error-icon" aria-hidden="true">
        !
      </span>
      <p className="error-message">{message}</p>
      <div className="error-actions">
        {loginUrl && (
          <a className="button small primary" href={loginUrlBack(loginUrl)} data-testid="login-link">
            Log in
          </a>
        )}
        {onDismiss && (
          <button type="button" className="button small ghost" onClick={onDismiss} aria-label="Dismiss this notice">
            Dismiss
          </button>
        )}
      </div>
    </div>
  );
}

/**
 * The login address with `next` naming this page as it is now, conversation (`#<id>`) included, which the server
 * could not know when it wrote the page (it passes `next` as the chat's path).
 * @param {string} loginUrl
 */
export function loginUrlBack(loginUrl) {
  try {
    const url = new URL(loginUrl, window.location.href);
    const { pathname, search, hash, origin, href } = window.location;
    // A login page on another site needs the whole address to come back to, as Django's redirect_to_login gives it.
    const sameSite = url.origin === origin;
    url.searchParams.set('next', sameSite ? `${pathname}${search}${hash}` : href);
    return sameSite ? `${url.pathname}${url.search}` : url.href;
  } catch {
    return loginUrl;
  }
}
