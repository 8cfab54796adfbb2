import { useEffect, useState } from 'react';
import { copyText } from '../markdown/clipboard.js';

/** How long the button says that the copy worked. */
const COPIED_MS = 2000;

/**
 * A Copy button: it copies `text` (an answer's markdown source, what the person typed, or a code block) and says
 * "Copied" (or "Copy failed") for a moment. Its words are an attribute shown by CSS and its accessible name, not a
 * text node, so that the text content of what it sits in stays what was said.
 * @param {{text: string, name?: string, className?: string, iconSize?: number, testId?: string}} props
 */
export function CopyButton({
  text,
  name = 'Copy',
  className = 'button small ghost message-copy',
  iconSize = 14,
  testId = 'copy',
}) {
  const [copied, setCopied] = useState(/** @type {boolean|null} */ (null));
  useEffect(() => {
    if (copied === null) return undefined;
    const timer = setTimeout(() => setCopied(null), COPIED_MS);
    return () => clearTimeout(timer);
  }, [copied]);

  const label = copied === null ? name : copied ? 'Copied' : 'Copy failed';
  return (
    <button
      type="button"
      className={className}
      data-testid={testId}
      aria-label={label}
      title={label}
      data-label={copied === null ? 'Copy' : label}
      data-copied={copied === null ? undefined : String(copied)}
      onClick={async () => setCopied(await copyText(text))}
    >
      <svg viewBox="0 0 24 24" width={iconSize} height={iconSize} aria-hidden="true" focusable="false">
        {copied ? (
          <path d="M5 12.5l4.5 4.5L19 7.5" fill="none" stroke="currentColor" strokeWidth="2" />
        ) : (
          <>
            <rect x="8" y="8" width="12" height="12" rx="2" fill="none" stroke="currentColor" strokeWidth="2" />
            <path
              d="M16 8V6a2 2 0 0 0-2-2H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h2"
              fill="none"
              stroke="currentColor"
              strokeWidth="2"
            />
          </>
        )}
      </svg>
    </button>
  );
}
