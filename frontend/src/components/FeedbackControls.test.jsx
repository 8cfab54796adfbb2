import { act } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { chatReducer, initialChatState, newExchange } from '../state/chatReducer.js';
import { byRole, oneByRole, render } from '../test/render.jsx';
import { AssistantMessage } from './AssistantMessage.jsx';

/** Thumbs up and down on an answer, with the comment box, as the person uses them. */

let view;
afterEach(() => {
  view?.unmount();
  view = undefined;
});

const answer = (fields = {}) =>
  newExchange({ key: 's-1', stream: 's-1', status: 'completed', prompt: 'Hi', answer: 'Hello.', ...fields });

/**
 * Renders an answer whose feedback is saved by `save` (the API's stand-in) and kept as the reducer keeps it, so that
 * what is shown after a save is what the page would show.
 */
function show(fields = {}, save = vi.fn(async (_stream, feedback) => (feedback.rating ? feedback : null))) {
  let state = { ...initialChatState(), exchanges: [answer(fields)] };
  const onFeedback = async (stream, feedback) => {
    const kept = await save(stream, feedback);
    state = chatReducer(state, { type: 'feedbackSaved', stream, feedback: kept });
    view.rerender(element(state.exchanges[0], onFeedback));
  };
  view = render(element(state.exchanges[0], onFeedback));
  return { container: view.container, save };
}

function element(exchange, onFeedback) {
  return <AssistantMessage exchange={exchange} onRetry={() => {}} retryDisabled={false} onFeedback={onFeedback} />;
}

const good = (container) => oneByRole(container, 'button', { name: 'Good answer' });
const bad = (container) => oneByRole(container, 'button', { name: 'Bad answer' });
const pressed = (button) => button.getAttribute('aria-pressed');

async function click(target) {
  await act(async () => target.click());
}

async function type(textarea, value) {
  const setValue = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
  await act(async () => {
    setValue.call(textarea, value);
    textarea.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

describe('feedback on an answer', () => {
  it('offers Good answer and Bad answer, not pressed, next to Copy on an ended answer', () => {
    const { container } = show();
    const footer = container.querySelector('.answer-footer');
    expect(footer.contains(good(container)) && footer.contains(bad(container))).toBe(true);
    expect(footer.contains(oneByRole(container, 'button', { name: 'Copy' }))).toBe(true);
    expect([pressed(good(container)), pressed(bad(container))]).toEqual(['false', 'false']);
  });

  it('is not offered while the answer streams', () => {
    const { container } = show({ status: 'streaming' });
    expect(byRole(container, 'button', { name: /answer$/ })).toHaveLength(0);
  });

  it('is offered on an answer that failed or was stopped', () => {
    for (const status of ['failed', 'cancelled', 'interrupted']) {
      const { container } = show({ status, answer: '' });
      expect(pressed(bad(container))).toBe('false');
      view.unmount();
      view = undefined;
    }
  });

  it('shows the rating the server has, as after a reload', () => {
    const { container } = show({ feedback: { rating: 'down', comment: 'Too short.' } });
    expect([pressed(good(container)), pressed(bad(container))]).toEqual(['false', 'true']);
    expect(oneByRole(container, 'button', { name: 'Edit comment' })).toBeTruthy();
  });

  it('saves a thumbs up, presses it, and opens no comment box unless asked', async () => {
    const { container, save } = show();
    await click(good(container));
    expect(save).toHaveBeenCalledWith('s-1', { rating: 'up', comment: '' });
    expect([pressed(good(container)), pressed(bad(container))]).toEqual(['true', 'false']);
    expect(container.querySelector('textarea')).toBeNull();

    await click(oneByRole(container, 'button', { name: 'Add a comment' }));
    const textarea = container.querySelector('textarea');
    expect(document.activeElement).toBe(textarea);
    expect(textarea.closest('form').getAttribute('aria-label')).toBe('Comment on the answer');
    expect(textarea.labels[0].textContent).toBe('What was good about it? (optional)');
  });

  it('opens the comment box after a thumbs down and saves the comment with the rating', async () => {
    const { container, save } = show();
    await click(bad(container));
    expect(save).toHaveBeenLastCalledWith('s-1', { rating: 'down', comment: '' });
    const textarea = container.querySelector('textarea');
    expect(textarea.labels[0].textContent).toBe('What was wrong with it? (optional)');
    expect(textarea.maxLength).toBe(2000);
    expect(document.activeElement).toBe(textarea);

    await type(textarea, '  It missed the point.  ');
    await click(oneByRole(container, 'button', { name: 'Save comment' }));
    expect(save).toHaveBeenLastCalledWith('s-1', { rating: 'down', comment: 'It missed the point.' });
    expect(container.querySelector('textarea')).toBeNull();
    expect(pressed(bad(container))).toBe('true');
    expect(document.activeElement).toBe(bad(container));

    // Switching to a thumbs up keeps the comment; editing it starts from what was saved.
    await click(good(container));
    expect(save).toHaveBeenLastCalledWith('s-1', { rating: 'up', comment: 'It missed the point.' });
    await click(oneByRole(container, 'button', { name: 'Edit comment' }));
    expect(container.querySelector('textarea').value).toBe('It missed the point.');
    await click(oneByRole(container, 'button', { name: 'Cancel' }));
    expect(container.querySelector('textarea')).toBeNull();
    expect(save).toHaveBeenCalledTimes(3);
  });

  it('takes the feedback back when the pressed thumb is pressed again', async () => {
    const { container, save } = show({ feedback: { rating: 'up', comment: 'Nice.' } });
    await click(good(container));
    expect(save).toHaveBeenLastCalledWith('s-1', { rating: null, comment: '' });
    expect([pressed(good(container)), pressed(bad(container))]).toEqual(['false', 'false']);
    expect(byRole(container, 'button', { name: /comment/ })).toHaveLength(0);
  });

  it('shows the rating as pressed while it is saved, and goes back and says so when saving fails', async () => {
    let fail;
    const save = vi.fn(
      () =>
        new Promise((_resolve, reject) => {
          fail = reject;
        }),
    );
    const { container } = show({ feedback: { rating: 'up', comment: '' } }, save);
    await click(bad(container));
    expect([pressed(good(container)), pressed(bad(container))]).toEqual(['false', 'true']);
    await click(bad(container)); // a second press while saving sends nothing more
    expect(save).toHaveBeenCalledTimes(1);

    await act(async () => fail(new Error('503')));
    expect([pressed(good(container)), pressed(bad(container))]).toEqual(['true', 'false']);
    expect(oneByRole(container, 'alert').textContent).toBe('Your feedback was not saved. Try again.');
    expect(container.querySelector('textarea')).toBeNull();
  });
});
