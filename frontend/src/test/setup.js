/**
 * What jsdom lacks and the app uses. jsdom does no layout, so a ResizeObserver (which use-stick-to-bottom watches the
 * conversation with) would never fire anyway: this one observes nothing.
 */
if (typeof globalThis.ResizeObserver === 'undefined') {
  globalThis.ResizeObserver = class ResizeObserver {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
}
