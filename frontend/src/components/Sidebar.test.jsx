import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { deleteConversation, renameConversation, searchConversations } from '../api.js';
import { App } from '../App.jsx';
import { DEFAULT_CONFIG } from '../config.js';
import { SEARCH_DEBOUNCE_MS, useConversationSearch } from '../hooks/useConversationSearch.js';
import { FakeSocket } from '../test/fakeSocket.js';
import { byRole, byTestId, oneByRole, render, renderHook } from '../test/render.jsx';
import { Sidebar } from './Sidebar.jsx';

const NOW = new Date().toISOString();
const LIST = [
  { id: 'c-1', title: 'Sky colours', updated: NOW },
  { id: 'c-2', title: 'Bread', updated: NOW },
];

let view;

afterEach(() => {
  view?.unmount();
  view = undefined;
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

/** Lets animation frames, timers and promises run. */
async function settle(ms = 30) {
  await act(async () => {
    await new Promise((resolve) => setTimeout(resolve, ms));
  });
}

function typeInto(input, text) {
  const setValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  act(() => {
    setValue.call(input, text);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

function press(target, key) {
  const event = new KeyboardEvent('keydown', { key, bubbles: true, cancelable: true });
  act(() => {
    target.dispatchEvent(event);
  });
  return event;
}

function click(element) {
  act(() => element.click());
}

function idleSearch(overrides = {}) {
  return { query: '', setQuery: vi.fn(), results: [], status: 'idle', hasMore: false, loadMore: vi.fn(), ...overrides };
}

function renderSidebar(props = {}) {
  const handlers = {
    onRename: vi.fn(async () => {}),
    onDelete: vi.fn(async () => {}),
    ...props,
  };
  view = render(
    <Sidebar
      conversations={LIST}
      listStatus="ready"
      current="c-1"
      open={false}
      onNewChat={() => {}}
      onNavigate={() => {}}
      onReload={() => {}}
      search={idleSearch()}
      {...handlers}
    />,
  );
  return handlers;
}

const entries = () => byTestId(view.container, 'conversation-entry');

describe('Sidebar: rename', () => {
  it('renames in place: Enter saves the trimmed title', async () => {
    const { onRename } = renderSidebar();
    const [first] = entries();
    click(oneByRole(first, 'button', { name: 'Rename' }));
    const input = first.querySelector('input');
    expect(input.getAttribute('aria-label')).toBe('New title');
    expect(input.value).toBe('Sky colours');
    expect(document.activeElement).toBe(input);

    typeInto(input, '  Why the sky is blue ');
    const enter = press(input, 'Enter');
    await settle();

    expect(onRename).toHaveBeenCalledWith('c-1', 'Why the sky is blue');
    expect(enter.defaultPrevented).toBe(true);
    expect(entries()[0].querySelector('input')).toBeNull();
  });

  it('Escape cancels, and is not taken for stopping the answer', async () => {
    const { onRename } = renderSidebar();
    const [first] = entries();
    click(oneByRole(first, 'button', { name: 'Rename' }));
    const input = first.querySelector('input');
    typeInto(input, 'Something else');

    const escape = press(input, 'Escape');
    await settle();

    expect(escape.defaultPrevented).toBe(true); // the page's Escape handler leaves a handled Escape alone
    expect(onRename).not.toHaveBeenCalled();
    expect(entries()[0].textContent).toContain('Sky colours');
  });

  it('a blank or unchanged title saves nothing', async () => {
    const { onRename } = renderSidebar();
    click(oneByRole(entries()[0], 'button', { name: 'Rename' }));
    typeInto(entries()[0].querySelector('input'), '   ');
    press(entries()[0].querySelector('input'), 'Enter');
    await settle();
    expect(onRename).not.toHaveBeenCalled();
  });

  it('says so when the server refuses, and keeps the field', async () => {
    renderSidebar({ onRename: vi.fn(async () => Promise.reject(new Error('400'))) });
    click(oneByRole(entries()[0], 'button', { name: 'Rename' }));
    typeInto(entries()[0].querySelector('input'), 'New');
    press(entries()[0].querySelector('input'), 'Enter');
    await settle();
    expect(byRole(view.container, 'alert')[0].textContent).toBe('Could not rename it. Try again.');
    expect(entries()[0].querySelector('input').value).toBe('New');
  });
});

describe('Sidebar: delete', () => {
  it('asks first; Cancel keeps the conversation', async () => {
    const { onDelete } = renderSidebar();
    const second = entries()[1];
    click(oneByRole(second, 'button', { name: 'Delete' }));

    const question = oneByRole(second, 'group', { name: 'Delete “Bread”?' });
    expect(document.activeElement).toBe(oneByRole(question, 'button', { name: 'Cancel' }));
    click(oneByRole(question, 'button', { name: 'Cancel' }));
    await settle();

    expect(onDelete).not.toHaveBeenCalled();
    expect(byRole(entries()[1], 'group')).toHaveLength(0);
    expect(document.activeElement).toBe(oneByRole(entries()[1], 'button', { name: 'Delete' }));
  });

  it('deletes once confirmed', async () => {
    const { onDelete } = renderSidebar();
    click(oneByRole(entries()[1], 'button', { name: 'Delete' }));
    click(oneByRole(entries()[1], 'button', { name: 'Delete' })); // the confirm step's own button
    await settle();
    expect(onDelete).toHaveBeenCalledWith('c-2');
  });

  it('every entry has its Rename and Delete, told apart by the title they describe', () => {
    renderSidebar();
    const renames = byRole(view.container, 'button', { name: 'Rename' });
    expect(renames).toHaveLength(2);
    const described = renames.map((button) => document.getElementById(button.getAttribute('aria-describedby')));
    expect(described.map((element) => element.textContent)).toEqual(['Sky colours', 'Bread']);
    expect(byRole(view.container, 'button', { name: 'Delete' })).toHaveLength(2);
  });
});

describe('Sidebar: search', () => {
  it('results replace the list while a query is typed, with their snippets', () => {
    const results = [{ id: 'c-9', title: 'Sourdough', updated: NOW, snippet: 'How long does sourdough rise?' }];
    renderSidebar({ search: idleSearch({ query: 'sourdough', status: 'ready', results }) });
    const items = byTestId(view.container, 'conversation-item');
    expect(items.map((item) => item.getAttribute('href'))).toEqual(['#c-9']);
    expect(byTestId(view.container, 'conversation-snippet')[0].textContent).toBe('How long does sourdough rise?');
    expect(view.container.querySelector('h2').textContent).toBe('Search results');
  });

  it('says "No results" when nothing matched', () => {
    renderSidebar({ search: idleSearch({ query: 'zzz', status: 'ready' }) });
    expect(byTestId(view.container, 'search-status')[0].textContent).toBe('No results');
    expect(byTestId(view.container, 'conversation-item')).toHaveLength(0);
  });

  it('the box is named, hands on what is typed, and Escape clears it', () => {
    const setQuery = vi.fn();
    renderSidebar({ search: idleSearch({ query: 'bre', setQuery, status: 'searching' }) });
    const box = view.container.querySelector('input[type="search"]');
    expect(box.getAttribute('aria-label')).toBe('Search conversations');
    typeInto(box, 'bread');
    expect(setQuery).toHaveBeenLastCalledWith('bread');
    expect(press(box, 'Escape').defaultPrevented).toBe(true);
    expect(setQuery).toHaveBeenLastCalledWith('');
  });

  it('offers more results when there is another page', () => {
    const loadMore = vi.fn();
    const results = [{ id: 'c-9', title: 'A', updated: NOW, snippet: '' }];
    renderSidebar({ search: idleSearch({ query: 'a', status: 'ready', results, hasMore: true, loadMore }) });
    click(oneByRole(view.container, 'button', { name: 'More results' }));
    expect(loadMore).toHaveBeenCalled();
  });
});

describe('useConversationSearch', () => {
  let fetchMock;
  beforeEach(() => {
    vi.useFakeTimers();
    fetchMock = vi.fn(async (url) => {
      const page = Number(new URL(url, 'http://x').searchParams.get('page'));
      return Response.json({
        conversations: [{ id: `p${page}`, title: `Page ${page}`, updated: NOW, snippet: '' }],
        page,
        next_page: page < 2 ? page + 1 : null,
      });
    });
    vi.stubGlobal('fetch', fetchMock);
  });

  async function advance(ms) {
    await act(async () => {
      await vi.advanceTimersByTimeAsync(ms);
    });
  }

  it('waits for typing to pause, then searches once for what was typed', async () => {
    const hook = renderHook(({ version }) => useConversationSearch('/api/conversations/search/', version), {
      version: 0,
    });
    expect(hook.result.current.status).toBe('idle');
    for (const query of ['s', 'so', 'sou']) {
      act(() => hook.result.current.setQuery(query));
      await advance(SEARCH_DEBOUNCE_MS - 50);
    }
    expect(fetchMock).not.toHaveBeenCalled();
    expect(hook.result.current.status).toBe('searching');

    await advance(SEARCH_DEBOUNCE_MS);

    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(fetchMock.mock.calls[0][0]).toBe('/api/conversations/search/?q=sou&page=1');
    expect(hook.result.current.status).toBe('ready');
    expect(hook.result.current.results.map((r) => r.id)).toEqual(['p1']);

    act(() => hook.result.current.loadMore());
    await advance(10);
    expect(fetchMock.mock.calls[1][0]).toBe('/api/conversations/search/?q=sou&page=2');
    expect(hook.result.current.results.map((r) => r.id)).toEqual(['p1', 'p2']);
    expect(hook.result.current.hasMore).toBe(false);

    act(() => hook.result.current.setQuery('   '));
    await advance(SEARCH_DEBOUNCE_MS * 2);
    expect(hook.result.current.status).toBe('idle');
    expect(fetchMock).toHaveBeenCalledTimes(2);
    hook.unmount();
  });
});

describe('the conversation API', () => {
  it('renames with PATCH, JSON and the CSRF token; deletes with DELETE; searches with q and page', async () => {
    const fetchMock = vi.fn(async () => Response.json({ id: 'a', title: 'T', updated: NOW }));
    vi.stubGlobal('fetch', fetchMock);

    await renameConversation('/api/conversations/', 'a b', 'T', { csrfToken: 'tok' });
    await deleteConversation('/api/conversations/', 'a', { csrfToken: 'tok' });
    await searchConversations('/api/conversations/search/', 'tea & cake', { page: 3 });

    const [[renameUrl, renameInit], [deleteUrl, deleteInit], [searchUrl]] = fetchMock.mock.calls;
    expect(renameUrl).toBe('/api/conversations/a%20b/');
    expect(renameInit).toMatchObject({ method: 'PATCH', credentials: 'same-origin', body: '{"title":"T"}' });
    expect(renameInit.headers).toMatchObject({ 'X-CSRFToken': 'tok', 'Content-Type': 'application/json' });
    expect(deleteUrl).toBe('/api/conversations/a/');
    expect(deleteInit).toMatchObject({ method: 'DELETE', headers: { 'X-CSRFToken': 'tok' } });
    expect(searchUrl).toBe('/api/conversations/search/?q=tea+%26+cake&page=3');
  });

  it('a refused rename rejects with its status', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => Response.json({ error: 'x' }, { status: 400 })),
    );
    await expect(renameConversation('/api/conversations/', 'a', '', { csrfToken: 't' })).rejects.toMatchObject({
      status: 400,
    });
  });
});

describe('the page', () => {
  it('deleting the open conversation closes it and drops it from the list', async () => {
    FakeSocket.reset();
    const OPEN = { id: 'c0ffee01', title: 'Sky colours', updated: NOW };
    const OTHER = { id: 'c0ffee02', title: 'Bread', updated: NOW };
    window.history.replaceState(null, '', '/#c0ffee01');
    let deleted = false;
    const fetchMock = vi.fn(async (url, init) => {
      if (url === '/api/conversations/c0ffee01/' && init?.method === 'DELETE') {
        deleted = true;
        return Response.json({ id: 'c0ffee01', deleted: true });
      }
      if (url === '/api/conversations/') return Response.json({ conversations: deleted ? [OTHER] : [OPEN, OTHER] });
      if (url === '/api/conversations/c0ffee01/') return Response.json({ ...OPEN, exchanges: [] });
      return new Response('{}', { status: 404 });
    });
    vi.stubGlobal('fetch', fetchMock);
    view = render(<App config={{ ...DEFAULT_CONFIG, csrfToken: 'tok' }} createSocket={FakeSocket.create} />);
    await settle();
    const sidebar = view.container.querySelector('#sidebar');
    expect(byTestId(sidebar, 'conversation-item')[0].getAttribute('aria-current')).toBe('page');
    expect(byTestId(sidebar, 'conversation-item')).toHaveLength(2);

    const first = byTestId(sidebar, 'conversation-entry')[0];
    click(oneByRole(first, 'button', { name: 'Delete' }));
    click(oneByRole(first, 'button', { name: 'Delete' }));
    await settle();

    const call = fetchMock.mock.calls.find(([, init]) => init?.method === 'DELETE');
    expect(call[1].headers['X-CSRFToken']).toBe('tok');
    expect(window.location.hash).toBe('');
    expect(byTestId(sidebar, 'conversation-item').map((item) => item.getAttribute('href'))).toEqual(['#c0ffee02']);
  });
});
