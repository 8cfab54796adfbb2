/**
 * The small line icons of the page's buttons, drawn in the text colour. Always `aria-hidden`: the button that holds
 * one has the accessible name. SVG rather than a character, since a machine without an emoji font shows a box.
 */

/** @param {{d: string, size?: number}} props */
function Icon({ d, size = 14 }) {
  return (
    <svg viewBox="0 0 24 24" width={size} height={size} aria-hidden="true" focusable="false">
      <path d={d} fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}

export const PencilIcon = () => <Icon d="M4 20h4L19 9l-4-4L4 16v4zM13.5 6.5l4 4" />;
export const TrashIcon = () => <Icon d="M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6" />;
export const RegenerateIcon = () => <Icon d="M20 11a8 8 0 1 0-2.3 5.7M20 4v7h-7" />;
export const ChevronLeftIcon = () => <Icon d="M15 5l-7 7 7 7" />;
export const ChevronRightIcon = () => <Icon d="M9 5l7 7-7 7" />;
