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
