import { formatUpdated } from './format.js';

/**
 * The client's conversations, newest first, and the New chat button.
 * Each entry is a link to `#<id>`, so the browser's Back button and "open in new tab" work too.
 *
 * @param {{conversations: import('../api.js').ConversationSummary[], listStatus: 'loading'|'ready'|'error',
 *   current: string|null, open: boolean, onNewChat: () => void, onNavigate: () => void, onReload: () => void}} props
 */
export function Sidebar({ conversations, listStatus, current, open, onNewChat, onNavigate, onReload }) {
  return (
    <nav id="sidebar" className="sidebar" aria-label="Conversations" data-open={open ? 'true' : undefined}>
      <button type="button" className="button new-chat" data-testid="new-chat" onClick={onNewChat}>
        <span aria-hidden="true">+</span> New chat
      </button>
      <h2 className="sidebar-heading">History</h2>
      {listStatus === 'error' && (
        <p className="sidebar-message">
          Could not load your conversations.{' '}
          <button type="button" className="link-button" onClick={onReload}>
            Try again
          </button>
        </p>
      )}
      {listStatus === 'ready' && conversations.length === 0 && (
        <p className="sidebar-message">Your conversations will appear here.</p>
      )}
      <ul className="conversation-list" data-testid="conversation-list">
        {conversations.map((conversation) => (
          <li key={conversation.id}>
            <a
              href={`#${conversation.id}`}
              className="conversation-item"
              data-testid="conversation-item"
              aria-current={conversation.id === current ? 'page' : undefined}
              onClick={onNavigate}
            >
              <span className="conversation-title">{conversation.title || 'Untitled'}</span>
              <time className="conversation-updated" dateTime={conversation.updated}>
                {formatUpdated(conversation.updated)}
              </time>
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
}
