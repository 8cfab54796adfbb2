import { useEffect, useState } from 'react';

const STORAGE_KEY = 'streaming-chat.draft';

/**
 * The composer's text, kept in this tab's sessionStorage so that a reload (or a crash) does not lose what the
 * person was typing.
 * @returns {[string, (draft: string) => void]}
 */
export function useDraft() {
  const [draft, setDraft] = useState(() => readStored());
  useEffect(() => {
    try {
      if (draft) sessionStorage.setItem(STORAGE_KEY, draft);
      else sessionStorage.removeItem(STORAGE_KEY);
    } catch {
      // storage can be disabled or full; the draft then lives only in memory
    }
  }, [draft]);
  return [draft, setDraft];
}

function readStored() {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? '';
  } catch {
    return '';
  }
}
