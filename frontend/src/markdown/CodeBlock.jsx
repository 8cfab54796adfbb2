import { memo, useEffect, useMemo, useState } from 'react';
import { copyText } from './clipboard.js';
import { canHighlight, highlightCode } from './highlightCode.js';

/** How long the Copy button shows that it worked. */
const COPIED_MS = 2000;
/**
 * Longer code stays plain: highlighting 150 KB takes highlight.js about 100 ms, and rendering its spans more, a
 * visible stall when the block completes (GitHub's file view has a similar limit).
 */
export const HIGHLIGHT_MAX_CHARS = 20_000;

/**
 * A fenced code block with its language and a Copy button.
 *
 * The language name and the button's words are in attributes and CSS, not text nodes, so the answer's text
 * content stays exactly the answer. While the block is still being streamed it is shown plain: highlighting the
 * whole block again on every animation frame would cost more than it shows. The code scrolls sideways when its lines
 * are long, so it can take keyboard focus (arrow keys then scroll it) and is named for the person who lands on it.
 *
 * @param {{code: string, language?: string, highlight: boolean}} props
 */
export function CodeBlock({ code, language, highlight }) {
  const content = useMemo(
    () =>
      highlight && canHighlight(language) && code.length <= HIGHLIGHT_MAX_CHARS ? (
        highlightCode(code, language)
      ) : (
        <PlainCode code={code} />
      ),
    [code, language, highlight],
  );
  return (
    <div className="code-block" data-language={language || 'text'}>
      <CopyButton text={code} />
      <pre tabIndex={0} role="group" aria-label={language ? `Code, ${language}` : 'Code'}>
        <code className={language ? `hljs language-${language}` : 'hljs'}>{content}</code>
      </pre>
    </div>
  );
}

/** Lines per piece of plain code; see PlainCode. */
const CHUNK_LINES = 50;

/**
 * Plain code in pieces of `CHUNK_LINES` lines, each its own memoised block box. As a long block streams only its
 * last piece changes, so React updates one short text node and the browser lays out only that piece, instead of
 * the whole block's text on every frame (which cost a 150 KB block 50 to 80 ms a frame). The text content is the
 * code exactly: each piece but the last ends with its line break.
 * @param {{code: string}} props
 */
function PlainCode({ code }) {
  const lines = code.split('\n');
  if (lines.length <= CHUNK_LINES) return code;
  const chunks = [];
  for (let start = 0; start < lines.length; start += CHUNK_LINES) {
    const end = start + CHUNK_LINES;
    chunks.push(lines.slice(start, end).join('\n') + (end < lines.length ? '\n' : ''));
  }
  return chunks.map((text, index) => <CodeChunk key={index} text={text} />);
}

const CodeChunk = memo(function CodeChunk({ text }) {
  return <span className="code-chunk">{text}</span>;
});

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
