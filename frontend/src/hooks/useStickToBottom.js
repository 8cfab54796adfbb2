import { useCallback, useLayoutEffect, useRef } from 'react';

/** How close to the bottom (in pixels) still counts as "reading the newest text". */
const NEAR_BOTTOM_PX = 80;

/**
 * Keeps a scrolling container at its bottom while new text arrives, unless the person scrolled up to read something
 * earlier: then it leaves them where they are.
 *
 * @param {unknown} content anything that changes when the container's content grows
 * @returns {{ref: import('react').RefObject<HTMLElement|null>, onScroll: () => void, scrollToBottom: () => void}}
 */
export function useStickToBottom(content) {
  const ref = useRef(/** @type {HTMLElement|null} */ (null));
  const stuck = useRef(true);

  const onScroll = useCallback(() => {
    const element = ref.current;
    if (!element) return;
    stuck.current = element.scrollHeight - element.scrollTop - element.clientHeight < NEAR_BOTTOM_PX;
  }, []);

  const scrollToBottom = useCallback(() => {
    stuck.current = true;
    const element = ref.current;
    if (element) element.scrollTop = element.scrollHeight;
  }, []);

  useLayoutEffect(() => {
    const element = ref.current;
    if (element && stuck.current) element.scrollTop = element.scrollHeight;
  }, [content]);

  return { ref, onScroll, scrollToBottom };
}
