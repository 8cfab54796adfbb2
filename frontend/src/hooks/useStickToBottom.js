import { useCallback } from 'react';
import { useStickToBottom as useLibraryStickToBottom } from 'use-stick-to-bottom';

/**
 * Keeps the conversation at its bottom while new text arrives, only while the person is there: any move up (a wheel
 * or trackpad step, a swipe, a drag of the scrollbar, selecting text) releases it, and they stay where they left
 * off until they scroll back to the bottom or call `scrollToBottom` ("Jump to latest", sending a prompt).
 *
 * `use-stick-to-bottom` does the work: it watches the content's size (a ResizeObserver), so growth of any kind keeps
 * the view pinned, and tells a scroll of the person's from one of its own. Jumps are instant, not animated: an answer
 * grows every frame, and an animation chasing it would lag behind the newest line.
 *
 * @returns {{ref: (element: HTMLElement|null) => void, contentRef: (element: HTMLElement|null) => void,
 *   atBottom: boolean, scrollToBottom: () => void}} `ref` goes on the scrolling element, `contentRef` on the one
 *   inside it that grows; `atBottom` is false while the person reads further up
 */
export function useStickToBottom() {
  const stick = useLibraryStickToBottom(OPTIONS);
  const { scrollToBottom: libraryScrollToBottom } = stick;
  const scrollToBottom = useCallback(() => {
    libraryScrollToBottom('instant');
  }, [libraryScrollToBottom]);
  return { ref: stick.scrollRef, contentRef: stick.contentRef, atBottom: stick.isAtBottom, scrollToBottom };
}

const OPTIONS = { initial: 'instant', resize: 'instant' };
