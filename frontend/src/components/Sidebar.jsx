import { useId, useRef, useState } from 'react';
import { formatUpdated } from './format.js';
import { PencilIcon, TrashIcon } from './icons.jsx';

/**
 * The client's conversations, newest first, the New chat button, and a search box whose results replace the list
 * while a query is typed. Each entry is a link to `#<id>`, so the browser's Back button and "open in new tab" work
 * too, with Rename (in place: Enter saves, Escape cancels) and Delete (after a confirm step).
 *
 * @param {{conversations: import('../api.js').ConversationSummary[], listStatus: 'loading'|'ready'|'error',
 *   current: string|null, open: boolean, onNewChat: () => void, onNavigate: () => void, onReload: () => void,
 *   search?: SidebarSearch, onRename?: (id: string, title: string) => Promise<void>,
 *   onDelete?: (id: string) => Promise<void>}} props
 *
 * @typedef {{query: string, setQuery: (query: string) => void, results: import('../api.js').SearchResult[],
 *   status: 'idle'|'searching'|'ready'|'error', hasMore: boolean, loadMore: () => void}} SidebarSearch
 */
export function Sidebar({
  conversations,
  listStatus,
  current,
  open,
  onNewChat,
  onNavigate,
  onReload,
  search,
  onRename,
  onDelete,
}) {
  const searchRef = useRef(/** @type {HTMLInputElement|null} */ (null));
  const searching = search !== undefined && search.status !== 'idle';
  const shown = searching ? search.results : conversations;
  const entry = (/** @type {import('../api.js').SearchResult|import('../api.js').ConversationSummary} */ item) => (
    <ConversationEntry
      key={item.id}
      conversation={item}
      current={item.id === current}
      onNavigate={onNavigate}
      onRename={onRename}
      onDelete={
        onDelete &&
        (async (id) => {
          await onDelete(id);
          // The entry is gone with the focus it had: keep the keyboard in the sidebar (unless focus went elsewhere).
          if (document.activeElement === document.body || document.activeElement === null) searchRef.current?.focus();
        })
      }
    />
  );
  return (
    <nav id="sidebar" className="sidebar" aria-label="Conversations" data-open={open ? 'true' : undefined}>
      <button type="button" className="button new-chat" data-testid="new-chat" onClick={onNewChat}>
        <span aria-hidden="true">+</span> New chat
      </button>
      {search && (
        <input
          ref={searchRef}
          type="search"
          className="conversation-search"
          data-testid="conversation-search"
          aria-label="Search conversations"
          placeholder="Search conversations"
          value={search.query}
          maxLength={500}
          onChange={(event) => search.setQuery(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === 'Escape' && search.query) {
              event.preventDefault(); // clears the search, and neither stops an answer nor closes the drawer
              search.setQuery('');
            }
          }}
        />
      )}
      <h2 className="sidebar-heading">{searching ? 'Search results' : 'History'}</h2>
      {!searching && listStatus === 'error' && (
        <p className="sidebar-message">
          Could not load your conversations.{' '}
          <button type="button" className="link-button" onClick={onReload}>
            Try again
          </button>
        </p>
      )}
      {!searching && listStatus === 'ready' && conversations.length === 0 && (
        <p className="sidebar-message">Your conversations will appear here.</p>
      )}
      {searching && (
        <p className="sidebar-message" role="status" data-testid="search-status">
          {search.status === 'searching' && search.results.length === 0 && 'Searching…'}
          {search.status === 'ready' && search.results.length === 0 && 'No results'}
          {search.status === 'error' && 'Could not search your conversations.'}
        </p>
      )}
      <ul className="conversation-list" data-testid="conversation-list">
        {shown.map(entry)}
      </ul>
      {searching && search.hasMore && (
        <button type="button" className="button small ghost" onClick={search.loadMore}>
          More results
        </button>
      )}
    </nav>
  );
}

/**
 * One conversation in the list: its link, or the field that renames it, or the step that confirms its deletion.
 * @param {{conversation: import('../api.js').ConversationSummary & {snippet?: string}, current: boolean,
 *   onNavigate: () => void, onRename?: (id: string, title: string) => Promise<void>,
 *   onDelete?: (id: string) => Promise<void>}} props
 */
function ConversationEntry({ conversation, current, onNavigate, onRename, onDelete }) {
  const [mode, setMode] = useState(/** @type {'view'|'renaming'|'confirming'} */ ('view'));
  const [draft, setDraft] = useState('');
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState(/** @type {string|null} */ (null));
  const renameRef = useRef(/** @type {HTMLButtonElement|null} */ (null));
  const inputRef = useRef(/** @type {HTMLInputElement|null} */ (null));
  const deleteRef = useRef(/** @type {HTMLButtonElement|null} */ (null));
  const titleId = useId();
  const title = conversation.title || 'Untitled';

  function leave(/** @type {'rename'|'delete'} */ back) {
    setMode('view');
    setFailure(null);
    // Back to the button that started it, once it is shown again.
    requestAnimationFrame(() => (back === 'rename' ? renameRef : deleteRef).current?.focus());
  }

  async function saveTitle() {
    const next = draft.trim();
    if (!next || next === conversation.title) {
      leave('rename');
      return;
    }
    setBusy(true);
    try {
      await onRename?.(conversation.id, next);
      leave('rename');
      setBusy(false);
    } catch {
      setFailure('Could not rename it. Try again.');
      setBusy(false);
      requestAnimationFrame(() => inputRef.current?.focus());
    }
  }

  async function confirmDelete() {
    setBusy(true);
    try {
      await onDelete?.(conversation.id);
    } catch {
      setFailure('Could not delete it. Try again.');
      setBusy(false);
    }
  }

  if (mode === 'renaming') {
    return (
      <li className="conversation-entry" data-testid="conversation-entry" data-conversation={conversation.id}>
        <input
          ref={inputRef}
          className="conversation-rename"
          data-testid="rename-input"
          aria-label="New title"
          aria-describedby={failure ? `${titleId}-failure` : undefined}
          value={draft}
          maxLength={200}
          disabled={busy}
          enterKeyHint="done"
          autoFocus
          onFocus={(event) => event.target.select()}
          onChange={(event) => setDraft(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === 'Enter' && !event.nativeEvent.isComposing) {
              event.preventDefault();
              saveTitle();
            } else if (event.key === 'Escape') {
              event.preventDefault(); // neither stops an answer nor closes the drawer
              leave('rename');
            }
          }}
          onBlur={() => !busy && leave('rename')}
        />
        {failure && (
          <p id={`${titleId}-failure`} className="conversation-failure" role="alert">
            {failure}
          </p>
        )}
      </li>
    );
  }

  return (
    <li className="conversation-entry" data-testid="conversation-entry" data-conversation={conversation.id}>
      <a
        href={`#${conversation.id}`}
        className="conversation-item"
        data-testid="conversation-item"
        aria-current={current ? 'page' : undefined}
        onClick={onNavigate}
      >
        <span className="conversation-title" id={titleId}>
          {title}
        </span>
        {conversation.snippet ? (
          <span className="conversation-snippet" data-testid="conversation-snippet">
            {conversation.snippet}
          </span>
        ) : null}
        <time className="conversation-updated" dateTime={conversation.updated}>
          {formatUpdated(conversation.updated)}
        </time>
      </a>
      {mode === 'confirming' ? (
        <div className="conversation-confirm" role="group" aria-labelledby={`${titleId}-question`}>
          <span id={`${titleId}-question`}>Delete “{title}”?</span>
          <button
            type="button"
            className="button small danger"
            data-testid="confirm-delete"
            disabled={busy}
            onClick={confirmDelete}
          >
            Delete
          </button>
          <button
            type="button"
            className="button small"
            autoFocus
            disabled={busy}
            onClick={() => leave('delete')}
            onKeyDown={(event) => {
              if (event.key === 'Escape') {
                event.preventDefault();
                leave('delete');
              }
            }}
          >
            Cancel
          </button>
          {failure && (
            <p className="conversation-failure" role="alert">
              {failure}
            </p>
          )}
        </div>
      ) : (
        (onRename || onDelete) && (
          <div className="conversation-actions">
            {onRename && (
              <button
                ref={renameRef}
                type="button"
                className="icon-button small"
                aria-label="Rename"
                aria-describedby={titleId}
                title="Rename"
                onClick={() => {
                  setDraft(conversation.title);
                  setFailure(null);
                  setMode('renaming');
                }}
              >
                <PencilIcon />
              </button>
            )}
            {onDelete && (
              <button
                ref={deleteRef}
                type="button"
                className="icon-button small"
                aria-label="Delete"
                aria-describedby={titleId}
                title="Delete"
                onClick={() => {
                  setFailure(null);
                  setMode('confirming');
                }}
              >
                <TrashIcon />
              </button>
            )}
          </div>
        )
      )}
    </li>
  );
}
