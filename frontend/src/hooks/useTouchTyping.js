import { useSyncExternalStore } from 'react';

/** A phone or tablet: a finger, no mouse to hover with. Its on-screen keyboard's Enter is the only way to a new line. */
const TOUCH_QUERY = '(pointer: coarse) and (hover: none)';

function query() {
  return typeof window !== 'undefined' && typeof window.matchMedia === 'function' ? window.matchMedia(TOUCH_QUERY) : null;
}

function subscribe(onChange) {
  const media = query();
  media?.addEventListener?.('change', onChange);
  return () => media?.removeEventListener?.('change', onChange);
}

function isTouch() {
  return query()?.matches === true;
}

/**
 * Whether the person types on a touch screen without a hover-capable pointer, so the composer leaves Enter alone
 * (a new line) and the Send button sends. Follows the device as it changes (a tablet's keyboard attached or not).
 * @returns {boolean}
 */
export function useTouchTyping() {
  return useSyncExternalStore(subscribe, isTouch, () => false);
}
