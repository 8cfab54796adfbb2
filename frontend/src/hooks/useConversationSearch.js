import { useCallback, useEffect, useState } from 'react';
import { searchConversations } from '../api.js';

/** How long typing must pause before the query goes to the server. */
export const SEARCH_DEBOUNCE_MS = 250;

/**
 * The sidebar's search: the query as typed, searched on the server once typing pauses, again when `version` changes
 * (a rename or a delete), page after page on `loadMore`. A blank query searches nothing (`status` 'idle'): the
 * sidebar shows its list then.
 *
 * @param {string} searchUrl
 * @param {number} version
 * @returns {{query: string, setQuery: (query: string) => void, results: import('../api.js').SearchResult[],
 *   status: 'idle'|'searching'|'ready'|'error', hasMore: boolean, loadMore: () => void}}
 */
export function useConversationSearch(searchUrl, version) {
  const [query, setQuery] = useState('');
  const [results, setResults] = useState(/** @type {import('../api.js').SearchResult[]} */ ([]));
  const [status, setStatus] = useState(/** @type {'idle'|'searching'|'ready'|'error'} */ ('idle'));
  const [nextPage, setNextPage] = useState(/** @type {number|null} */ (null));
  const trimmed = query.trim();
  // A new query, or a change to the conversations, starts again from the first page.
  const key = `${version}:${trimmed}`;
  const [paging, setPaging] = useState({ key, page: 1 });
  const page = paging.key === key ? paging.page : 1;

  useEffect(() => {
    if (!trimmed) {
      setStatus('idle');
      setResults([]);
      setNextPage(null);
      return undefined;
    }
    setStatus('searching');
    const controller = new AbortController();
    // The first page waits for typing to pause; "more" is asked for at once.
    const timer = setTimeout(
      () => {
        searchConversations(searchUrl, trimmed, { page, signal: controller.signal })
          .then((found) => {
            setResults((shown) => (page === 1 ? found.conversations : [...shown, ...found.conversations]));
            setNextPage(found.next_page);
            setStatus('ready');
          })
          .catch(() => {
            if (!controller.signal.aborted) setStatus('error');
          });
      },
      page === 1 ? SEARCH_DEBOUNCE_MS : 0,
    );
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [searchUrl, trimmed, page, version]);

  const loadMore = useCallback(() => {
    if (nextPage !== null) setPaging({ key, page: nextPage });
  }, [key, nextPage]);

  return { query, setQuery, results, status, hasMore: nextPage !== null && status === 'ready', loadMore };
}
