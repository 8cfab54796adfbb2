import { act } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError, saveFeedback } from '../api.js';
import { chatReducer, initialChatState } from '../state/chatReducer.js';
import { renderHook } from '../test/render.jsx';
import { useFeedback } from './useFeedback.js';

/** Feedback from the button to the server and back into the state: the API call, the hook and the reducer. */

afterEach(() => vi.unstubAllGlobals());

const URL_TEMPLATE = '/api/exchanges/{stream}/feedback/';

describe('saveFeedback', () => {
  it('PUTs the rating and comment as JSON, with the CSRF token, to the answer’s URL', async () => {
    const fetchMock = vi.fn(async () => Response.json({ stream: 's 1', feedback: { rating: 'down', comment: 'No.' } }));
    vi.stubGlobal('fetch', fetchMock);
    const kept = await saveFeedback(URL_TEMPLATE, 's 1', { rating: 'down', comment: 'No.' }, { csrfToken: 'tok' });
    expect(kept).toEqual({ rating: 'down', comment: 'No.' });
    const [url, init] = fetchMock.mock.calls[0];
    expect(url).toBe('/api/exchanges/s%201/feedback/');
    expect(init).toMatchObject({ method: 'PUT', credentials: 'same-origin' });
    expect(init.headers).toMatchObject({ 'X-CSRFToken': 'tok', 'Content-Type': 'application/json' });
    expect(JSON.parse(init.body)).toEqual({ rating: 'down', comment: 'No.' });
  });

  it('sends null to take the feedback back, and a refusal is an ApiError with its status', async () => {
    const fetchMock = vi.fn(async () => Response.json({ error: 'Still streaming.' }, { status: 409 }));
    vi.stubGlobal('fetch', fetchMock);
    const failure = await saveFeedback(URL_TEMPLATE, 's', { rating: null }, { csrfToken: 't' }).catch((e) => e);
    expect(JSON.parse(fetchMock.mock.calls[0][1].body)).toEqual({ rating: null, comment: '' });
    expect(failure).toBeInstanceOf(ApiError);
    expect(failure.status).toBe(409);
  });
});

describe('useFeedback', () => {
  it('saves through the API and hands what the server kept to the reducer', async () => {
    const dispatch = vi.fn();
    const save = vi.fn(async () => ({ rating: 'up', comment: '' }));
    const { result } = renderHook(useFeedback, { feedbackUrl: URL_TEMPLATE, csrfToken: 'tok', dispatch, save });
    await act(async () => {
      await result.current('s-1', { rating: 'up', comment: '' });
    });
    expect(save).toHaveBeenCalledWith(URL_TEMPLATE, 's-1', { rating: 'up', comment: '' }, { csrfToken: 'tok' });
    expect(dispatch).toHaveBeenCalledWith({
      type: 'feedbackSaved',
      stream: 's-1',
      feedback: { rating: 'up', comment: '' },
    });
  });

  it('changes nothing when saving fails', async () => {
    const dispatch = vi.fn();
    const save = vi.fn(async () => {
      throw new ApiError(500);
    });
    const { result } = renderHook(useFeedback, { feedbackUrl: URL_TEMPLATE, csrfToken: 'tok', dispatch, save });
    await expect(result.current('s-1', { rating: 'up' })).rejects.toBeInstanceOf(ApiError);
    expect(dispatch).not.toHaveBeenCalled();
  });
});

describe('the feedback in the state', () => {
  const loaded = (feedback) =>
    chatReducer(initialChatState(), {
      type: 'conversationLoaded',
      detail: {
        id: 'c',
        exchanges: [{ stream: 's-1', prompt: 'Hi', answer: 'Hello.', status: 'completed', feedback }],
      },
    });

  it('comes from the conversation API, and is none when the API has none or an unknown rating', () => {
    expect(loaded({ rating: 'down', comment: 'Short.' }).exchanges[0].feedback).toEqual({
      rating: 'down',
      comment: 'Short.',
    });
    expect(loaded(null).exchanges[0].feedback).toBeNull();
    expect(loaded(undefined).exchanges[0].feedback).toBeNull();
    expect(loaded({ rating: 'meh', comment: '' }).exchanges[0].feedback).toBeNull();
  });

  it('is replaced by what the server kept, and only for that answer', () => {
    const state = loaded(null);
    const rated = chatReducer(state, { type: 'feedbackSaved', stream: 's-1', feedback: { rating: 'up', comment: '' } });
    expect(rated.exchanges[0].feedback).toEqual({ rating: 'up', comment: '' });
    expect(state.exchanges[0].feedback).toBeNull(); // pure: the old state is untouched
    const takenBack = chatReducer(rated, { type: 'feedbackSaved', stream: 's-1', feedback: null });
    expect(takenBack.exchanges[0].feedback).toBeNull();
    expect(chatReducer(rated, { type: 'feedbackSaved', stream: 'other', feedback: null })).toBe(rated);
  });
});
