/**
 * Splits markdown into top-level blocks, so that a streaming answer re-parses only its growing last block.
 *
 * A block ends at a blank line that is followed by a line starting in the first column (a new paragraph, heading,
 * list or fence), and before a code fence that opens in the first column, once its line is complete (it ends a
 * paragraph, list or quote, so a long code block is a block of its own even without a blank line before it). A blank line inside a fenced code
 * block or a `$$` math block, or one followed by an indented line (the continuation of a list item), does not end a
 * block. The split of a text's prefix is the split of the whole text, except that its last block may still grow or
 * split: that is what lets earlier blocks be rendered once and memoized.
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

  const lines = text.split('\n');
  for (const [index, line] of lines.entries()) {
    if (fence) {
      current.push(line);
      if (closesFence(line, fence)) fence = null;
      continue;
    }
    const blank = line.trim() === '';
    fence = opensFence(line);
    // Only once the fence's line is complete: "```a" may still become the inline code "```a```".
    const codeStarts = fence !== null && fence.marker !== '$' && startsInFirstColumn(line) && index < lines.length - 1;
    if (hasContent && ((afterBlank && startsInFirstColumn(line)) || codeStarts)) {
      blocks.push(current.join('\n'));
      current = [];
      hasContent = false;
    }
    current.push(line);
    hasContent ||= !blank;
    afterBlank = blank;
  }
  blocks.push(current.join('\n'));
  return blocks;
}

/**
 * A block that is one fenced code block and nothing else, opened in the first column: its language and code, and
 * whether its closing fence has come. Such a block is shown without a markdown parser, which is what keeps a long
 * code block cheap while it streams. Anything else (text around the fence, an indented fence, an info string with
 * escapes or entities, which CommonMark would decode) gives null, and the block goes to the parser as usual.
 * @param {string} block
 * @returns {{language: string|undefined, code: string, closed: boolean}|null}
 */
export function fencedCode(block) {
  const firstBreak = block.indexOf('\n');
  const opening = firstBreak === -1 ? block : block.slice(0, firstBreak);
  const fence = opensFence(opening);
  if (!fence || fence.marker === '$' || !startsInFirstColumn(opening) || /[\\&]/.test(opening)) return null;
  const lines = firstBreak === -1 ? [] : block.slice(firstBreak + 1).split('\n');
  let end = lines.length;
  while (end > 0 && lines[end - 1].trim() === '') end -= 1;
  const closed = end > 0 && closesFence(lines[end - 1], fence);
  if (lines.slice(0, closed ? end - 1 : end).some((line) => closesFence(line, fence))) return null;
  const info = opening.slice(fence.length).trim();
  return {
    language: info.split(/[ \t]/)[0] || undefined,
    code: lines.slice(0, closed ? end - 1 : lines.length).join('\n'),
    closed,
  };
}

/**
 * Whether a block ends inside a `$$` math block that is still open: while it streams, its formula is incomplete.
 * @param {string} block
 */
export function endsInOpenMath(block) {
  let fence = null;
  for (const line of block.split('\n')) {
    if (fence) {
      if (closesFence(line, fence)) fence = null;
    } else {
      fence = opensFence(line);
    }
  }
  return fence?.marker === '$';
}

// A fence of backticks or tildes opens code; one of two or more dollars opens display math (remark-math).
const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,}|\${2,})/;
const FENCE_CLOSE = /^ {0,3}(`{3,}|~{3,}|\${2,})[ \t]*$/;

function opensFence(line) {
  const match = FENCE_OPEN.exec(line);
  if (!match) return null;
  const run = match[1];
  // A backtick fence's info string may not contain a backtick (CommonMark), so "```a```" is inline code; likewise
  // a math fence's may not contain a dollar, so "$$x$$" is inline math.
  if ((run[0] === '`' || run[0] === '$') && line.slice(match[0].length).includes(run[0])) return null;
  return { marker: run[0], length: run.length };
}

function closesFence(line, fence) {
  const match = FENCE_CLOSE.exec(line);
  return match !== null && match[1][0] === fence.marker && match[1].length >= fence.length;
}

function startsInFirstColumn(line) {
  return line !== '' && !/^[ \t]/.test(line);
}
