import { describe, expect, it } from 'vitest';
import { endsInOpenMath, fencedCode, splitBlocks } from './splitBlocks.js';

describe('splitBlocks', () => {
  it('splits paragraphs at blank lines and joins back to the same text', () => {
    const text = '# Title\n\nFirst paragraph\nstill first.\n\nSecond.';
    const blocks = splitBlocks(text);
    expect(blocks).toEqual(['# Title\n', 'First paragraph\nstill first.\n', 'Second.']);
    expect(blocks.join('\n')).toBe(text);
  });

  it('keeps a fenced code block with blank lines in one block', () => {
    const text = 'Intro\n\n```python\ndef f():\n\n    return 1\n```\n\nAfter';
    expect(splitBlocks(text)).toEqual(['Intro\n', '```python\ndef f():\n\n    return 1\n```\n', 'After']);
  });

  it('keeps an unclosed fence (still streaming) in the last block', () => {
    expect(splitBlocks('A\n\n```js\nlet x;\n\nlet y;')).toEqual(['A\n', '```js\nlet x;\n\nlet y;']);
  });

  it('needs the same marker, at least as long, to close a fence', () => {
    const text = '````\n```\n\nstill code\n````\n\nout';
    expect(splitBlocks(text)).toEqual(['````\n```\n\nstill code\n````\n', 'out']);
    expect(splitBlocks('~~~\n```\n\nin\n~~~\n\nout')).toEqual(['~~~\n```\n\nin\n~~~\n', 'out']);
  });

  it('does not split before an indented continuation of a list item', () => {
    const text = '1. Step one\n\n   Details of step one\n\n2. Step two';
    expect(splitBlocks(text)).toEqual(['1. Step one\n\n   Details of step one\n', '2. Step two']);
  });

  it('treats ```a``` on one line as inline code, not a fence', () => {
    expect(splitBlocks('```a```\n\nnext')).toEqual(['```a```\n', 'next']);
  });

  it('does not make empty blocks from leading blank lines', () => {
    expect(splitBlocks('\n\nHello')).toEqual(['\n\nHello']);
  });

  it('is stable on prefixes: only the last block of a prefix can change as text is added', () => {
    const text = 'One.\n\nTwo **bold**.\n\n```js\nx\n\ny\n```\n\n- a\n- b\n\nEnd.';
    const full = splitBlocks(text);
    for (let length = 0; length <= text.length; length += 1) {
      const prefix = splitBlocks(text.slice(0, length));
      expect(prefix.slice(0, -1)).toEqual(full.slice(0, prefix.length - 1));
    }
  });
});

describe('splitBlocks: math and code fences', () => {
  it('keeps a $$ display formula with blank lines in one block', () => {
    expect(splitBlocks('A\n\n$$\nx\n\ny\n$$\n\nB')).toEqual(['A\n', '$$\nx\n\ny\n$$\n', 'B']);
  });

  it('treats $$x$$ on one line as inline math, not a fence', () => {
    expect(splitBlocks('$$x$$\n\nnext')).toEqual(['$$x$$\n', 'next']);
  });

  it('starts a block at a code fence in the first column once its line is complete', () => {
    expect(splitBlocks('Here is code:\n```js\nx')).toEqual(['Here is code:', '```js\nx']);
    expect(splitBlocks('Here is code:\n```js')).toEqual(['Here is code:\n```js']);
  });
});

describe('fencedCode', () => {
  it('reads a block that is one fence: language, code, closed or not', () => {
    expect(fencedCode('```py title\na\n\nb\n```\n')).toEqual({ language: 'py', code: 'a\n\nb', closed: true });
    expect(fencedCode('~~~\nstill')).toEqual({ language: undefined, code: 'still', closed: false });
  });

  it('leaves anything else to the parser', () => {
    expect(fencedCode('text\n```\nx\n```')).toBeNull();
    expect(fencedCode('  ```\nx\n```')).toBeNull();
    expect(fencedCode('```a\\_b\nx\n```')).toBeNull();
    expect(fencedCode('```\nx\n```\nafter')).toBeNull();
    expect(fencedCode('$$\nx\n$$')).toBeNull();
  });
});

describe('endsInOpenMath', () => {
  it('is true only inside an unclosed $$ block', () => {
    expect(endsInOpenMath('$$\n\\frac{a}{')).toBe(true);
    expect(endsInOpenMath('$$\nx\n$$')).toBe(false);
    expect(endsInOpenMath('```\n$$\n')).toBe(false);
  });
});
