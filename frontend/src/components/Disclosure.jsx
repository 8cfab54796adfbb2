import { useId } from 'react';

/**
 * A button that shows and hides the panel under it (the disclosure pattern: `aria-expanded`, `aria-controls`).
 * A closed panel renders nothing inside, so a hidden long text costs nothing while it grows.
 *
 * @param {{label: import('react').ReactNode, open: boolean, onToggle: () => void, buttonId?: string,
 *   panelClassName?: string, children: import('react').ReactNode}} props `label` is the button's accessible name
 */
export function Disclosure({ label, open, onToggle, buttonId, panelClassName, children }) {
  const panelId = useId();
  return (
    <>
      <button
        type="button"
        id={buttonId}
        className="disclosure-button"
        aria-expanded={open}
        aria-controls={panelId}
        onClick={onToggle}
      >
        <span className="disclosure-chevron" aria-hidden="true" />
        {label}
      </button>
      <div id={panelId} className={panelClassName} hidden={!open}>
        {open && children}
      </div>
    </>
  );
}
