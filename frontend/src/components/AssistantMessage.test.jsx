import { act } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { newExchange } from '../state/chatReducer.js';
import { byRole, byTestId, oneByRole, render } from '../test/render.jsx';
import { AssistantMessage } from './AssistantMessage.jsx';

/** An answer's thinking, tool calls and text as the person sees them, rendered from plain exchanges. */

let view;
afterEach(() => {
  view?.unmount();
  view = undefined;
});

const thinking = (text, durationMs = null) => ({ kind: 'reasoning', text, startedAt: null, durationMs });
const text = (t) => ({ kind: 'text', text: t });
const tool = (fields = {}) => ({
  kind: 'tool',
  call: 'call_1',
  name: 'search_history',
  arguments: '{"query": "python"}',
  status: 'done',
  result: 'Nothing found.',
  error: null,
  durationMs: 12,
  ...fields,
});
const exchange = (fields = {}) =>
  newExchange({ key: 's-1', stream: 's-1', status: 'streaming', prompt: 'Hi', ...fields });

function element(props) {
  return (
    <AssistantMessage onStop={() => {}} onRetry={() => {}} retryDisabled={false} stopDisabled={false} {...props} />
  );
}

function show(fields) {
  view = render(element({ exchange: exchange(fields) }));
  return view.container;
}

function update(fields) {
  view.rerender(element({ exchange: exchange(fields) }));
}

const click = (target) => act(() => target.click());

describe('the Thinking section', () => {
  it('is open while the model thinks, named "Thinking", and shows the reasoning as plain text', () => {
    const container = show({ parts: [thinking('First **this**.\n\n<b>then</b> that')] });
    const button = oneByRole(container, 'button', { name: 'Thinking' });
    expect(button.getAttribute('aria-expanded')).toBe('true');
    const group = oneByRole(container, 'group', { name: 'Thinking' });
    const paragraphs = [...group.querySelectorAll('p')].map((p) => p.textContent);
    expect(paragraphs).toEqual(['First **this**.', '<b>then</b> that']);
    expect(group.querySelector('b, strong')).toBeNull();
    // The answer has no text yet: it is still to come, below the thinking.
    expect(byTestId(container, 'answer-text').map((answer) => answer.textContent)).toEqual(['']);
  });

  it('closes by itself when the answer begins, says how long it took, and can be opened again', () => {
    const container = show({ parts: [thinking('Hm, the sky.')] });
    update({ parts: [thinking('Hm, the sky.', 4200), text('Blue.')] });
    expect(byRole(container, 'button', { name: 'Thinking' })).toHaveLength(0);
    const button = oneByRole(container, 'button', { name: 'Thought for 4 s' });
    expect(button.getAttribute('aria-expanded')).toBe('false');
    expect(container.textContent).not.toContain('Hm, the sky.');
    expect(byTestId(container, 'answer-text').map((answer) => answer.textContent)).toEqual(['Blue.']);

    click(button);
    expect(button.getAttribute('aria-expanded')).toBe('true');
    expect(oneByRole(container, 'group', { name: 'Thought for 4 s' }).textContent).toContain('Hm, the sky.');
    update({ parts: [thinking('Hm, the sky.', 4200), text('Blue. Really.')], status: 'completed' });
    expect(button.getAttribute('aria-expanded')).toBe('true');
  });

  it('stays closed when the person closed it while the model was thinking', () => {
    const container = show({ parts: [thinking('Long thoughts')] });
    click(oneByRole(container, 'button', { name: 'Thinking' }));
    update({ parts: [thinking('Long thoughts, longer')] });
    expect(container.textContent).not.toContain('Long thoughts');
    update({ parts: [thinking('Long thoughts, longer', 800), text('Done.')] });
    expect(oneByRole(container, 'button', { name: 'Thought for 0.8 s' }).getAttribute('aria-expanded')).toBe('false');
  });

  it('without a known duration, or cut off by the end of the stream, is called Reasoning', () => {
    const container = show({ parts: [thinking('Where was I'), text('Yes.')], status: 'completed' });
    expect(oneByRole(container, 'button', { name: 'Reasoning' }).getAttribute('aria-expanded')).toBe('false');
    update({ parts: [thinking('Where was I')], status: 'cancelled' });
    expect(oneByRole(container, 'button', { name: 'Reasoning' }).getAttribute('aria-expanded')).toBe('false');
  });
});

describe('a tool card', () => {
  it('is a group named after the tool, with its status, laid-out arguments and a closed result', () => {
    const container = show({ parts: [tool()], status: 'completed' });
    const card = oneByRole(container, 'group', { name: 'Tool call search_history' });
    expect(card.dataset.status).toBe('done');
    expect(card.querySelector('[data-testid="tool-status"]').textContent).toBe('Status: done in 12 ms');
    expect(card.querySelector('[data-testid="tool-arguments"]').textContent).toBe('{\n  "query": "python"\n}');
    const result = oneByRole(card, 'button', { name: 'Result' });
    expect(result.getAttribute('aria-expanded')).toBe('false');
    expect(card.textContent).not.toContain('Nothing found.');
    click(result);
    expect(result.getAttribute('aria-expanded')).toBe('true');
    expect(card.querySelector('[data-testid="tool-result"]').textContent).toBe('Nothing found.');
  });

  it('shows arguments raw while they are written, and says so', () => {
    const container = show({ parts: [tool({ arguments: '{"query": "py', status: 'writing', result: null })] });
    const card = oneByRole(container, 'group', { name: 'Tool call search_history' });
    expect(card.querySelector('[data-testid="tool-arguments"]').textContent).toBe('{"query": "py');
    expect(card.querySelector('[data-testid="tool-status"]').textContent).toBe('Status: writing…');
    expect(byRole(card, 'button', { name: 'Result' })).toHaveLength(0);
  });

  it('shows the error of a failed call, and what is not JSON as it is', () => {
    const container = show({
      parts: [
        tool({
          arguments: 'not json',
          status: 'failed',
          result: null,
          error: { code: 'invalid_arguments', message: 'The arguments are not valid JSON.' },
          durationMs: 0,
        }),
      ],
      status: 'completed',
    });
    const card = oneByRole(container, 'group', { name: 'Tool call search_history' });
    expect(card.dataset.status).toBe('failed');
    expect(card.querySelector('[data-testid="tool-arguments"]').textContent).toBe('not json');
    expect(card.querySelector('[data-testid="tool-error"]').textContent).toBe('The arguments are not valid JSON.');
  });

  it('renders HTML in arguments and results as text, never as elements', () => {
    const html = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
    const container = show({
      parts: [tool({ arguments: JSON.stringify({ query: html }), result: html })],
      status: 'completed',
    });
    click(oneByRole(container, 'button', { name: 'Result' }));
    expect(container.querySelector('img, script')).toBeNull();
    expect(container.querySelector('[data-testid="tool-result"]').textContent).toBe(html);
    expect(container.querySelector('[data-testid="tool-arguments"]').textContent).toContain('<img src=x');
  });

  it('sits between the answer text before and after it, and a stopped call says so', () => {
    const container = show({
      parts: [text('Let me look.'), tool({ status: 'stopped', result: null }), text('')],
      status: 'cancelled',
    });
    const order = [...container.querySelectorAll('[data-testid="answer-text"], [data-testid="tool-call"]')].map(
      (node) => node.dataset.testid,
    );
    expect(order).toEqual(['answer-text', 'tool-call', 'answer-text']);
    expect(oneByRole(container, 'group', { name: 'Tool call search_history' }).dataset.status).toBe('stopped');
  });
});

describe('the streaming cursor', () => {
  const cursorOn = (container) =>
    byTestId(container, 'answer-text').map((answer) => answer.dataset.streaming === 'true');

  it('is on the text being written, and on the place of the answer after a tool call ended', () => {
    const container = show({ parts: [text('Let me look.')] });
    expect(cursorOn(container)).toEqual([true]);
    update({ parts: [text('Let me look.'), tool({ status: 'running', result: null })] });
    expect(cursorOn(container)).toEqual([false, false]);
    update({ parts: [text('Let me look.'), tool()] });
    expect(cursorOn(container)).toEqual([false, true]);
  });

  it('is not shown while the model thinks: the Thinking section says it', () => {
    const container = show({ parts: [thinking('Hm')] });
    expect(cursorOn(container)).toEqual([false]);
  });
});

describe('the stats', () => {
  it('tell the first output apart from the first token when the model thought first', () => {
    const container = show({
      parts: [thinking('Hm', 780), text('Yes.')],
      status: 'completed',
      firstOutputMs: 120,
      ttftMs: 900,
      durationMs: 2900,
    });
    expect(byTestId(container, 'answer-stats')[0].textContent).toBe(
      '120 ms to first output · 900 ms to first token · 2.90 s total',
    );
  });

  it('say the first token once when it was the first output', () => {
    const container = show({ parts: [text('Yes.')], status: 'completed', firstOutputMs: 300, ttftMs: 300 });
    expect(byTestId(container, 'answer-stats')[0].textContent).toBe('300 ms to first token');
  });
});
