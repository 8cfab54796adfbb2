import { memo, useMemo } from 'react';
import { CopyButton } from '../components/CopyButton.jsx';
import { canHighlight, highlightCode } from './highlightCode.js';

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
      <CopyButton text={code} name="Copy code" className="copy-button" iconSize={16} testId="copy-code" />
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

