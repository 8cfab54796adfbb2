import { useCallback, useLayoutEffect, useRef } from 'react';

/**
 * A function whose identity never changes but which always runs the latest `callback`. Memoized messages take
 * their handlers from it, so a new render of the page does not re-render every old answer.
 * @template {(...args: any[]) => any} T
 * @param {T} callback
 * @returns {T}
 */
export function useStableCallback(callback) {
  const latest = useRef(callback);
  useLayoutEffect(() => {
    latest.current = callback;
  });
  return /** @type {T} */ (useCallback((...args) => latest.current(...args), []));
}
