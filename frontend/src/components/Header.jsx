import { ConnectionStatus } from './ConnectionStatus.jsx';

/**
 * The top bar: the menu toggle (phones only), the app's name, the connection state and who is signed in.
 * @param {{status: import('../socket/useChatSocket.js').ConnectionStatus, navOpen: boolean,
 *   onToggleNav: () => void, config: import('../config.js').ChatConfig}} props
 */
export function Header({ status, navOpen, onToggleNav, config }) {
  return (
    <header className="topbar">
      <button
        type="button"
        className="icon-button nav-toggle"
        aria-controls="sidebar"
        aria-expanded={navOpen}
        onClick={onToggleNav}
      >
        <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
          <path d="M4 7h16M4 12h16M4 17h16" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
        </svg>
        <span className="sr-only">Conversations</span>
      </button>
      <h1 className="brand">Streaming chat</h1>
      <ConnectionStatus status={status} />
      <Account config={config} />
    </header>
  );
}

/** Signed-in name and a logout form (Django's LogoutView wants a POST with the CSRF token). */
function Account({ config }) {
  const { user, logoutUrl, loginUrl, csrfToken } = config;
  if (!user.authenticated) {
    return loginUrl ? (
      <a className="button small ghost account" href={loginUrl}>
        Log in
      </a>
    ) : null;
  }
  return (
    <div className="account">
      <span className="account-name">{user.name}</span>
      {logoutUrl && (
        <form method="post" action={logoutUrl}>
          <input type="hidden" name="csrfmiddlewaretoken" value={csrfToken} />
          <button type="submit" className="button small ghost">
            Log out
          </button>
        </form>
      )}
    </div>
  );
}
