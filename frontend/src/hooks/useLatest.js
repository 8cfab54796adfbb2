import { useLayoutEffect, useRef } from 'react';

/**
 * A ref that always holds the latest value, for async callbacks (a fetch that resolves later) that must act on the
 * state as it is then, not as it was when they started.
 * @template T
 * @param {T} value
 * @returns {{current: T}}
 */
export function useLatest(value) {
  const ref = useRef(value);
  useLayoutEffect(() => {
    ref.current = value;
  });
  return ref;
}
