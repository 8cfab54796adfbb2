/**
 * Splits markdown into top-level blocks, so that a streaming answer re-parses only its growing last block.
 *
 * A block ends at a blank line that is followed by a line starting in the first column (a new paragraph, heading,
 * list or fence). A blank line inside a fenced code block, or one followed by an indented line (the continuation
 * of a list item), does not end a block. The split of a text's prefix is the split of the whole text, except that
 * its last block may still grow or split: that is what lets earlier blocks be rendered once and memoized.
 *
 * Cost of the trade: a link reference definition (`[1]: http://…`) only serves the block it is in, and the items of
 * a list with blank lines between them become separate lists (which look the same).
 *
 * @param {string} text
 * @returns {string[]} blocks that join back, with "\n", into `text`
 */
export function splitBlocks(text) {
  const blocks = [];
  let current = [];
  let hasContent = false;
  let afterBlank = false;
  /** @type {{marker: string, length: number}|null} */
  let fence = null;

  for (const line of text.split('\n')) {
    if (fence) {
      current.push(line);
      if (closesFence(line, fence)) fence = null;
      continue;
    }
    const blank = line.trim() === '';
    if (afterBlank && hasContent && startsInFirstColumn(line)) {
      blocks.push(current.join('\n'));
      current = [];
      hasContent = false;
    }
    current.push(line);
    hasContent ||= !blank;
    afterBlank = blank;
    fence = opensFence(line);
  }
  blocks.push(current.join('\n'));
  return blocks;
}

const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})/;
const FENCE_CLOSE = /^ {0,3}(`{3,}|~{3,})[ \t]*$/;

function opensFence(line) {
  const match = FENCE_OPEN.exec(line);
  if (!match) return null;
  const run = match[1];
  // A backtick fence's info string may not contain a backtick (CommonMark), so "```a```" is inline code.
  if (run[0] === '`' && line.slice(match[0].length).includes('`')) return null;
  return { marker: run[0], length: run.length };
}

function closesFence(line, fence) {
  const match = FENCE_CLOSE.exec(line);
  return match !== null && match[1][0] === fence.marker && match[1].length >= fence.length;
}

function startsInFirstColumn(line) {
  return line !== '' && !/^[ \t]/.test(line);
}
