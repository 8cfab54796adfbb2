import { useEffect } from 'react';

/**
 * Calls `onEscape` when Escape is pressed while `active`; used to close the conversation drawer on a phone.
 * @param {boolean} active
 * @param {() => void} onEscape
 */
export function useEscapeKey(active, onEscape) {
  useEffect(() => {
    if (!active) return undefined;
    const onKeyDown = (event) => {
      if (event.key === 'Escape') onEscape();
    };
    window.addEventListener('keydown', onKeyDown);
    return () => window.removeEventListener('keydown', onKeyDown);
  }, [active, onEscape]);
}
