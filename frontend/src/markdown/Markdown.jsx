import { memo } from 'react';
import ReactMarkdown from 'react-markdown';
import rehypeKatex from 'rehype-katex';
import remarkGfm from 'remark-gfm';
import remarkMath from 'remark-math';
import 'katex/dist/katex.min.css';
import { CodeBlock } from './CodeBlock.jsx';
import { endsInOpenMath, fencedCode, splitBlocks } from './splitBlocks.js';

/**
 * Renders a model's answer as markdown, safely and cheaply while it streams.
 *
 * Safety: react-markdown builds React elements from a syntax tree and, without rehype-raw, turns any HTML in the
 * answer into plain text, so `<script>` or `<img onerror=…>` is shown, never run. Link and image addresses go
 * through react-markdown's URL filter (no `javascript:`), and images are shown as links so an answer cannot make
 * the browser load a remote picture on its own. Math (`$…$`, `$$…$$`) is typeset by KaTeX with `trust: false`, so
 * `\href`, `\url`, `\includegraphics` and the `\html…` commands stay inert text; KaTeX's output is a syntax tree that
 * react-markdown turns into elements, like the rest.
 *
 * Speed: the answer is split into top-level blocks; every block but the last is memoized on its text, so each new
 * delta re-parses only the growing last block. A block that is one fenced code block skips the parser altogether:
 * a long code block is then only a growing text node. A display formula still being written (its `$$` not yet
 * closed) is shown as its source, and typeset once it is complete.
 *
 * @param {{text: string, streaming?: boolean}} props
 */
export function Markdown({ text, streaming = false }) {
  const blocks = splitBlocks(text);
  return (
    <div className="markdown">
      {blocks.map((source, index) => (
        <MarkdownBlock key={index} source={source} live={streaming && index === blocks.length - 1} />
      ))}
    </div>
  );
}

const REMARK_PLUGINS = [remarkGfm, remarkMath];
/**
 * KaTeX on untrusted input: no commands that make links, load images or set HTML attributes (`trust: false`), errors
 * shown in place, and bounds on sizes and macro expansion so a hostile formula cannot make the page do much work.
 */
const KATEX_OPTIONS = { trust: false, strict: 'ignore', throwOnError: false, maxSize: 20, maxExpand: 200 };
const REHYPE_PLUGINS = [[rehypeKatex, KATEX_OPTIONS], rehypeFocusableMath];

/** A display formula wider than the answer scrolls sideways; focusable, a keyboard can scroll it too. */
function rehypeFocusableMath() {
  const visit = (node) => {
    if (node.type === 'element' && node.properties?.className?.includes?.('katex-display')) {
      node.properties.tabIndex = 0;
      return;
    }
    node.children?.forEach(visit);
  };
  return visit;
}
const NO_REHYPE_PLUGINS = [];

/**
 * One top-level block. `live` is true for the block still being written: its code stays unhighlighted until the
 * block is complete.
 * @type {import('react').NamedExoticComponent<{source: string, live: boolean}>}
 */
const MarkdownBlock = memo(function MarkdownBlock({ source, live }) {
  const fenced = fencedCode(source);
  if (fenced) return <CodeBlock code={fenced.code} language={fenced.language} highlight={!live} />;
  const typeset = !(live && endsInOpenMath(source));
  return (
    <ReactMarkdown
      remarkPlugins={REMARK_PLUGINS}
      rehypePlugins={typeset ? REHYPE_PLUGINS : NO_REHYPE_PLUGINS}
      components={live ? LIVE_COMPONENTS : COMPONENTS}
    >
      {source}
    </ReactMarkdown>
  );
});

/** Opens links in a new tab without giving that tab a handle on this one. */
function Link({ node: _node, children, ...props }) {
  return (
    <a {...props} target="_blank" rel="noopener noreferrer nofollow">
      {children}
    </a>
  );
}

/** An image in an answer is offered as a link: loading it is the person's choice. */
function ImageAsLink({ src, alt }) {
  if (!src) return alt ? <span>{alt}</span> : null;
  return (
    <a href={src} target="_blank" rel="noopener noreferrer nofollow" className="image-link">
      {alt || 'image'}
    </a>
  );
}

/** react-markdown hands `pre` a hast node holding one `code` element; this reads its language and text. */
function codeOf(preNode) {
  const code = preNode?.children?.find((child) => child.type === 'element' && child.tagName === 'code');
  const classes = code?.properties?.className ?? [];
  const languageClass = (Array.isArray(classes) ? classes : [classes]).find((name) =>
    String(name).startsWith('language-'),
  );
  return {
    language: languageClass ? String(languageClass).slice('language-'.length) : undefined,
    code: textOf(code).replace(/\n$/, ''),
  };
}

function textOf(node) {
  if (!node) return '';
  if (node.type === 'text') return node.value;
  return (node.children ?? []).map(textOf).join('');
}

function FinishedCode({ node }) {
  return <CodeBlock {...codeOf(node)} highlight />;
}

function LiveCode({ node }) {
  return <CodeBlock {...codeOf(node)} highlight={false} />;
}

const COMPONENTS = { a: Link, img: ImageAsLink, pre: FinishedCode };
const LIVE_COMPONENTS = { ...COMPONENTS, pre: LiveCode };
