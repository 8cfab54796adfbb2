import { createElement } from 'react';
import { createLowlight } from 'lowlight';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import markdown from 'highlight.js/lib/languages/markdown';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import shell from 'highlight.js/lib/languages/shell';
import sql from 'highlight.js/lib/languages/sql';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';

/**
 * Syntax highlighting for fenced code blocks.
 *
 * lowlight runs highlight.js but returns a syntax tree instead of an HTML string; the tree becomes React elements
 * here, so code from the model is only ever a text node and nothing is set as HTML. Only a handful of common
 * languages are registered to keep the bundle small; other code blocks are shown plain.
 */
const lowlight = createLowlight({
  bash,
  c,
  cpp,
  css,
  diff,
  go,
  java,
  javascript,
  json,
  markdown,
  python,
  rust,
  shell,
  sql,
  typescript,
  xml,
  yaml,
});

/** @param {string|undefined} language @returns {boolean} */
export function canHighlight(language) {
  return Boolean(language) && lowlight.registered(language);
}

/**
 * @param {string} code
 * @param {string} language a registered name or alias (see canHighlight)
 * @returns {import('react').ReactNode[]} spans with highlight.js class names around plain text
 */
export function highlightCode(code, language) {
  return toReact(lowlight.highlight(language, code).children);
}

/** Turns lowlight's hast nodes into React nodes: elements become spans, text stays text. */
function toReact(nodes) {
  return nodes.map((node, index) => {
    if (node.type === 'text') return node.value;
    if (node.type !== 'element') return null;
    const className = node.properties?.className;
    return createElement(
      'span',
      { key: index, className: Array.isArray(className) ? className.join(' ') : undefined },
      toReact(node.children),
    );
  });
}
