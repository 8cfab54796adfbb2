import { useEffect, useMemo, useState } from 'react';
import { copyText } from './clipboard.js';
import { canHighlight, highlightCode } from './highlightCode.js';

/** How long the Copy button shows that it worked. */
const COPIED_MS = 2000;

/**
 * A fenced code block with its language and a Copy button.
 *
 * The language name and the button's words are in attributes and CSS, not text nodes, so the answer's text
 * content stays exactly the answer. While the block is still being streamed it is shown plain: highlighting the
 * whole block again on every animation frame would cost more than it shows.
 *
 * @param {{code: string, language?: string, highlight: boolean}} props
 */
export function CodeBlock({ code, language, highlight }) {
  const content = useMemo(
    () => (highlight && canHighlight(language) ? highlightCode(code, language) : code),
    [code, language, highlight],
  );
  return (
    <div className="code-block" data-language={language || 'text'}>
      <CopyButton text={code} />
      <pre>
        <code className={language ? `hljs language-${language}` : 'hljs'}>{content}</code>
      </pre>
    </div>
  );
}

/** @param {{text: string}} props */
function CopyButton({ text }) {
  const [copied, setCopied] = useState(/** @type {boolean|null} */ (null));
  useEffect(() => {
    if (copied === null) return undefined;
    const timer = setTimeout(() => setCopied(null), COPIED_MS);
    return () => clearTimeout(timer);
  }, [copied]);

  const label = copied === null ? 'Copy code' : copied ? 'Copied' : 'Copy failed';
  return (
    <button
      type="button"
      className="copy-button"
      aria-label={label}
      title={label}
      data-label={copied === null ? 'Copy' : label}
      data-copied={copied === null ? undefined : String(copied)}
      onClick={async () => setCopied(await copyText(text))}
    >
      <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false">
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
