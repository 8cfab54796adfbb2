import { deleteConversation, renameConversation } from '../api.js';
import { useLatest } from './useLatest.js';
import { useStableCallback } from './useStableCallback.js';

/**
 * Renaming and deleting conversations from the sidebar. Both reject when the server refuses, so the sidebar can say
 * so; after either, `onChanged` refreshes what lists them. Deleting the open conversation closes it
 * (`onCurrentDeleted`: a new chat), since the server takes no more prompts into it.
 *
 * @param {Object} options
 * @param {string} options.conversationsUrl
 * @param {string} options.csrfToken
 * @param {string|null} options.current the open conversation
 * @param {() => void} options.onChanged
 * @param {() => void} options.onCurrentDeleted
 * @returns {{rename: (id: string, title: string) => Promise<void>, remove: (id: string) => Promise<void>}}
 */
export function useConversationActions({ conversationsUrl, csrfToken, current, onChanged, onCurrentDeleted }) {
  const open = useLatest(current);

  const rename = useStableCallback(async (/** @type {string} */ id, /** @type {string} */ title) => {
    await renameConversation(conversationsUrl, id, title, { csrfToken });
    onChanged();
  });

  const remove = useStableCallback(async (/** @type {string} */ id) => {
    await deleteConversation(conversationsUrl, id, { csrfToken });
    if (open.current === id) onCurrentDeleted();
    onChanged();
  });

  return { rename, remove };
}
