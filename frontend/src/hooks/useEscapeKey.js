import { useEffect } from 'react';

/**
 * Calls `onEscape` when Escape is pressed while `active`: it closes the conversation drawer on a phone, and stops
 * the running answer. An Escape that ends an input method's composition, or that something else already handled,
 * is left alone.
 * @param {boolean} active
 * @param {() => void} onEscape
 */
export function useEscapeKey(active, onEscape) {
  useEffect(() => {
    if (!active) return undefined;
    const onKeyDown = (event) => {
      if (event.key === 'Escape' && !event.isComposing && !event.defaultPrevented) onEscape();
    };
    window.addEventListener('keydown', onKeyDown);
    return () => window.removeEventListener('keydown', onKeyDown);
  }, [active, onEscape]);
}
