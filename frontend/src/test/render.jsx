import { act } from 'react';
import { createRoot } from 'react-dom/client';

globalThis.IS_REACT_ACT_ENVIRONMENT = true;

/**
 * Renders into a detached-from-nothing container with React's act(), the way Testing Library does, without adding it
 * as a dependency. Call `unmount` (or `cleanup`) at the end of each test.
 * @param {import('react').ReactNode} element
 */
export function render(element) {
  const container = document.createElement('div');
  document.body.append(container);
  const root = createRoot(container);
  act(() => root.render(element));
  return {
    container,
    rerender(next) {
      act(() => root.render(next));
    },
    unmount() {
      act(() => root.unmount());
      container.remove();
    },
  };
}

/**
 * Runs a hook in a throwaway component; `result.current` is its latest return value.
 * @template P, R
 * @param {(props: P) => R} hook
 * @param {P} props
 */
export function renderHook(hook, props) {
  const result = { current: /** @type {R} */ (undefined) };
  function Probe(probeProps) {
    result.current = hook(probeProps);
    return null;
  }
  const view = render(<Probe {...props} />);
  return { result, rerender: (next) => view.rerender(<Probe {...next} />), unmount: view.unmount };
}

/** `[data-testid=…]`, all matches. */
export function byTestId(container, id) {
  return [...container.querySelectorAll(`[data-testid="${id}"]`)];
}
