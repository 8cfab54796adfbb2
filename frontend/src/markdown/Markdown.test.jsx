import { afterEach, describe, expect, it, vi } from 'vitest';
import { render } from '../test/render.jsx';
import { Markdown } from './Markdown.jsx';

/** Every source text react-markdown was asked to parse, to check that finished blocks are not parsed again. */
const parsed = vi.hoisted(() => []);
vi.mock('react-markdown', async (importOriginal) => {
  const actual = await importOriginal();
  const Real = actual.default;
  return {
    ...actual,
    default: (props) => {
      parsed.push(props.children);
      return <Real {...props} />;
    },
  };
});

let view;
afterEach(() => {
  view?.unmount();
  view = undefined;
  parsed.length = 0;
});

function show(text, streaming = false) {
  view = render(<Markdown text={text} streaming={streaming} />);
  return view.container;
}

describe('HTML in an answer', () => {
  it('is shown as literal text, never as an element', () => {
    const container = show('Look: <img src=x onerror=alert(1)> and <script>alert(2)</script> done');
    expect(container.querySelector('img')).toBeNull();
    expect(container.querySelector('script')).toBeNull();
    expect(container.textContent).toContain('<img src=x onerror=alert(1)>');
    expect(container.textContent).toContain('<script>alert(2)</script>');
  });

  it('is literal text as an HTML block too', () => {
    const container = show('<div onclick="alert(1)">\n<iframe src="https://example.com"></iframe>\n</div>');
    expect(container.querySelector('div[onclick], iframe')).toBeNull();
    expect(container.textContent).toContain('<iframe src="https://example.com"></iframe>');
  });

  it('inside a code block stays text', () => {
    const container = show('```html\n<img src=x onerror=alert(1)>\n```');
    expect(container.querySelector('pre img')).toBeNull();
    expect(container.querySelector('pre').textContent).toBe('<img src=x onerror=alert(1)>');
  });
});

describe('links and images', () => {
  it('drops javascript: addresses', () => {
    const container = show('[click](javascript:alert(1))');
    const link = container.querySelector('a');
    expect(link.getAttribute('href') ?? '').not.toMatch(/javascript/i);
  });

  it('opens links in a new tab without an opener', () => {
    const link = show('[docs](https://example.com)').querySelector('a');
    expect(link.getAttribute('target')).toBe('_blank');
    expect(link.getAttribute('rel')).toContain('noopener');
  });

  it('shows an image as a link instead of loading it', () => {
    const container = show('![a cat](https://example.com/cat.png)');
    expect(container.querySelector('img')).toBeNull();
    expect(container.querySelector('a').getAttribute('href')).toBe('https://example.com/cat.png');
    expect(container.textContent).toBe('a cat');
  });
});

describe('code blocks', () => {
  it('are highlighted, with the language and a Copy button', () => {
    const container = show('```python\ndef greet():\n    return "hi"\n```');
    const block = container.querySelector('.code-block');
    expect(block.dataset.language).toBe('python');
    expect(block.querySelector('.hljs-keyword')?.textContent).toBe('def');
    expect(block.querySelector('button[aria-label="Copy code"]')).not.toBeNull();
    expect(block.querySelector('code').textContent).toBe('def greet():\n    return "hi"');
  });

  it('keep the answer text equal to the code (labels live in attributes)', () => {
    expect(show('```js\nlet x = 1;\n```').textContent).toBe('let x = 1;');
  });

  it('in an unknown language are shown plain', () => {
    const container = show('```klingon\nQapla\n```');
    expect(container.querySelector('code span')).toBeNull();
    expect(container.querySelector('code').textContent).toBe('Qapla');
  });

  it('still being streamed are not highlighted until they are finished', () => {
    const container = show('```js\nconst a = 1;', true);
    expect(container.querySelector('code span')).toBeNull();
    expect(container.querySelector('code').textContent).toBe('const a = 1;');
  });

  it('copy their code to the clipboard', async () => {
    const writeText = vi.fn().mockResolvedValue(undefined);
    vi.stubGlobal('navigator', { clipboard: { writeText } });
    vi.stubGlobal('isSecureContext', true);
    const container = show('```sh\necho hi\n```');
    const { act } = await import('react');
    await act(async () => container.querySelector('.copy-button').click());
    expect(writeText).toHaveBeenCalledWith('echo hi');
    expect(container.querySelector('.copy-button').getAttribute('aria-label')).toBe('Copied');
    vi.unstubAllGlobals();
  });
});

describe('while streaming', () => {
  it('re-parses only the growing last block, not the blocks already finished', () => {
    const head = '# Heading\n\nA finished paragraph.\n\n';
    show(`${head}The tail`, true);
    expect(parsed).toEqual(['# Heading\n', 'A finished paragraph.\n', 'The tail']);
    parsed.length = 0;
    view.rerender(<Markdown text={`${head}The tail grows`} streaming />);
    expect(parsed).toEqual(['The tail grows']);
  });

  it('renders GitHub-style tables', () => {
    const container = show('| a | b |\n| - | - |\n| 1 | 2 |');
    expect(container.querySelectorAll('td')).toHaveLength(2);
  });
});

describe('math', () => {
  it('typesets inline and display LaTeX with KaTeX', () => {
    const container = show('Euler: $e^{i\\pi} + 1 = 0$.\n\n$$\n\\int_0^1 x^2 \\, dx = \\frac{1}{3}\n$$');
    expect(container.querySelectorAll('.katex')).toHaveLength(2);
    expect(container.querySelector('.katex-display')).not.toBeNull();
    expect(container.querySelector('.katex-display math annotation').textContent).toContain('\\frac{1}{3}');
  });

  it('keeps a display formula with blank lines in one block, so it is typeset whole', () => {
    const container = show('$$\na = 1\n\nb = 2\n$$\n\nAfter.');
    expect(container.querySelectorAll('.katex-display')).toHaveLength(1);
    expect(container.textContent).toContain('After.');
  });

  it('shows a display formula still being written as its source, and typesets it once closed', () => {
    const open = show('Here:\n\n$$\n\\frac{a}{', true);
    expect(open.querySelector('.katex')).toBeNull();
    expect(open.textContent).toContain('\\frac{a}{');
    view.rerender(<Markdown text={'Here:\n\n$$\n\\frac{a}{b}\n$$'} streaming />);
    expect(view.container.querySelector('.katex-display')).not.toBeNull();
  });

  it('runs untrusted: \\href, \\url and \\includegraphics make no link or image, and no HTML is set', () => {
    const container = show(
      '$\\href{javascript:alert(1)}{click}$ $\\url{https://evil.example}$ ' +
        '$\\includegraphics{https://evil.example/track.png}$ $\\htmlId{x}{y}$ $\\htmlStyle{color:red}{z}$',
    );
    expect(container.querySelector('a, img, [id="x"]')).toBeNull();
    // The TeX source stays readable as text (KaTeX's MathML annotation); no attribute carries the addresses.
    const attributes = [...container.querySelectorAll('*')].flatMap((element) =>
      [...element.attributes].map((attribute) => attribute.value),
    );
    expect(attributes.filter((value) => /javascript:|evil\.example/.test(value))).toEqual([]);
  });

  it('is not parsed inside code', () => {
    const container = show('`$x$` and\n\n```\n$$y$$\n```');
    expect(container.querySelector('.katex')).toBeNull();
  });
});

describe('hostile output stays inert', () => {
  it('an <img onerror> in text, a link or a table cell is text', () => {
    const container = show('<img src=x onerror=alert(1)>\n\n| a |\n| - |\n| <img src=x onerror=alert(2)> |');
    expect(container.querySelector('img')).toBeNull();
    expect(container.querySelector('td').textContent).toBe('<img src=x onerror=alert(2)>');
  });

  it('javascript:, vbscript: and data: links lose their address', () => {
    const container = show(
      '[a](javascript:alert(1)) [b](JAVASCRIPT:alert(1)) [c](vbscript:x) [d](data:text/html,<script>x</script>) ' +
        '<javascript:alert(1)>',
    );
    for (const link of container.querySelectorAll('a')) {
      expect(link.getAttribute('href') ?? '').not.toMatch(/^(javascript|vbscript|data):/i);
    }
  });

  it('links carry rel="noopener noreferrer nofollow" and open in a new tab, autolinks too', () => {
    const container = show('[x](https://example.com) and https://example.org');
    const links = [...container.querySelectorAll('a')];
    expect(links).toHaveLength(2);
    for (const link of links) {
      expect(link.getAttribute('rel')).toBe('noopener noreferrer nofollow');
      expect(link.getAttribute('target')).toBe('_blank');
    }
  });

  it('a remote image is a link, not a request: ![x](http://evil/track.png)', () => {
    const container = show('![x](http://evil/track.png) and ![](http://evil/blank.png)');
    expect(container.querySelector('img')).toBeNull();
    const links = [...container.querySelectorAll('a.image-link')];
    expect(links.map((link) => link.getAttribute('href'))).toEqual(['http://evil/track.png', 'http://evil/blank.png']);
    expect(links[0].getAttribute('rel')).toBe('noopener noreferrer nofollow');
  });

  it('an image with a javascript: address becomes its alt text', () => {
    const container = show('![pic](javascript:alert(1))');
    expect(container.querySelector('img, a[href^="javascript"]')).toBeNull();
  });
});

describe('long code blocks', () => {
  it('stream without the markdown parser, in pieces whose text is the code exactly', () => {
    const code = Array.from({ length: 500 }, (_, index) => `line ${index}`).join('\n');
    const container = show(`Intro\n\n\`\`\`python\n${code}`, true);
    expect(parsed).toEqual(['Intro\n']);
    expect(container.querySelector('code').textContent).toBe(code);
    expect(container.querySelectorAll('.code-chunk').length).toBeGreaterThan(1);
  });

  it('stay plain past the highlighting limit once finished', () => {
    const code = 'x = 1\n'.repeat(5000);
    const container = show(`\`\`\`python\n${code}\`\`\``);
    expect(container.querySelector('code .hljs-number')).toBeNull();
    expect(container.querySelector('code').textContent).toBe(code.slice(0, -1));
  });
});
