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

/** The roles these tests ask for, of elements that have them without a `role` attribute. */
const IMPLICIT_ROLES = {
  BUTTON: 'button',
  DETAILS: 'group',
  FIELDSET: 'group',
  ARTICLE: 'article',
  PRE: 'generic',
  TEXTAREA: 'textbox',
};

/**
 * Elements by role and accessible name, the way a screen reader (and Testing Library's `getAllByRole`) finds them,
 * for the few roles the app uses: `role` or the element's own, named by `aria-labelledby`, `aria-label` or (for a
 * button) its text without what is `aria-hidden`. `name` matches exactly as a string, or as a RegExp.
 * @param {Element} container
 * @param {string} role
 * @param {{name?: string|RegExp}} [options]
 * @returns {HTMLElement[]}
 */
export function byRole(container, role, { name } = {}) {
  return [...container.querySelectorAll('*')].filter((element) => {
    const own = element.getAttribute('role') ?? IMPLICIT_ROLES[element.tagName];
    if (own !== role || element.closest('[hidden]')) return false;
    if (name === undefined) return true;
    const accessible = accessibleName(element);
    return typeof name === 'string' ? accessible === name : name.test(accessible);
  });
}

/** The one element of that role and name; fails the test otherwise. */
export function oneByRole(container, role, options = {}) {
  const found = byRole(container, role, options);
  if (found.length !== 1) {
    throw new Error(`expected one ${role} named ${String(options.name)}, found ${found.length}`);
  }
  return found[0];
}

function accessibleName(element) {
  const labelledBy = element.getAttribute('aria-labelledby');
  if (labelledBy) {
    return labelledBy
      .split(/\s+/)
      .map((id) => visibleText(element.ownerDocument.getElementById(id)))
      .join(' ')
      .trim();
  }
  const label = element.getAttribute('aria-label');
  if (label) return label.trim();
  return element.tagName === 'BUTTON' ? visibleText(element) : '';
}

function visibleText(element) {
  if (!element) return '';
  const copy = element.cloneNode(true);
  for (const hidden of copy.querySelectorAll('[aria-hidden="true"]')) hidden.remove();
  return copy.textContent.replace(/\s+/g, ' ').trim();
}
