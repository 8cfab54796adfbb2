import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError, fetchConversation, fetchConversations } from './api.js';

afterEach(() => vi.unstubAllGlobals());

describe('api', () => {
  it('lists conversations with the session cookie', async () => {
    const fetchMock = vi.fn(async () => Response.json({ conversations: [{ id: 'a', title: 'T', updated: 'x' }] }));
    vi.stubGlobal('fetch', fetchMock);
    await expect(fetchConversations('/api/conversations/')).resolves.toEqual([{ id: 'a', title: 'T', updated: 'x' }]);
    expect(fetchMock.mock.calls[0][0]).toBe('/api/conversations/');
    expect(fetchMock.mock.calls[0][1]).toMatchObject({ credentials: 'same-origin' });
  });

  it('fetches one conversation by id', async () => {
    const fetchMock = vi.fn(async () => Response.json({ id: 'a b', exchanges: [] }));
    vi.stubGlobal('fetch', fetchMock);
    await fetchConversation('/api/conversations/', 'a b');
    expect(fetchMock.mock.calls[0][0]).toBe('/api/conversations/a%20b/');
  });

  it('turns an HTTP error into an ApiError with its status', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => new Response('', { status: 404 })),
    );
    const failure = await fetchConversation('/api/conversations/', 'x').catch((error) => error);
    expect(failure).toBeInstanceOf(ApiError);
    expect(failure.status).toBe(404);
  });
});
