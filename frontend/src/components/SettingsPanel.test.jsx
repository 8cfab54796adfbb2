import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../api.js';
import { App } from '../App.jsx';
import { DEFAULT_CONFIG } from '../config.js';
import {
  DEFAULT_SETTINGS,
  formFromSettings,
  refusalMessage,
  settingsForServer,
  settingsFromForm,
  settingsFromSaved,
  useConversationSettings,
} from '../hooks/useConversationSettings.js';
import { FakeSocket, readyFrame } from '../test/fakeSocket.js';
import { byTestId, oneByRole, render, renderHook } from '../test/render.jsx';

/** The conversation's settings: the rules of the form, the hook that keeps and saves them, and the panel in the page. */

const MODELS = ['small', 'large'];
const ID = '11111111-2222-3333-4444-555555555555';
const READY = readyFrame({ model: 'small', models: MODELS, demo: false });

describe('the settings, as pure functions', () => {
  it('reads what the server keeps, dropping what is not of the expected type', () => {
    expect(settingsFromSaved({ model: 'large', system: 'Be brief.', temperature: 0.5, max_tokens: 99 })).toEqual({
      model: 'large',
      system: 'Be brief.',
      temperature: 0.5,
      max_tokens: 99,
    });
    expect(settingsFromSaved(undefined)).toEqual(DEFAULT_SETTINGS);
    expect(settingsFromSaved({ model: 3, system: null, temperature: 'hot', max_tokens: Infinity })).toEqual(
      DEFAULT_SETTINGS,
    );
  });

  it('checks the form as the server checks a prompt; empty is the default', () => {
    const form = (fields) => ({ ...formFromSettings(DEFAULT_SETTINGS, 'small'), ...fields });
    expect(settingsFromForm(form({ temperature: '0.7', max_tokens: '256' }), { maxTokens: 4096 })).toEqual({
      settings: { model: 'small', system: '', temperature: 0.7, max_tokens: 256 },
      error: null,
    });
    expect(settingsFromForm(form({ temperature: ' ', max_tokens: '' }), { maxTokens: 4096 }).settings).toMatchObject({
      temperature: null,
      max_tokens: null,
    });
    for (const temperature of ['2.1', '-1', 'warm']) {
      expect(settingsFromForm(form({ temperature }), { maxTokens: 4096 }).error).toMatch(/^Temperature must be/);
    }
    for (const tokens of ['0', '4097', '1.5']) {
      expect(settingsFromForm(form({ max_tokens: tokens }), { maxTokens: 4096 }).error).toMatch(/^Max tokens/);
    }
  });

  it('sends every field to the server, null for a default, and no system instruction while it is pinned', () => {
    const chosen = { model: null, system: 'Be brief.', temperature: 1, max_tokens: null };
    expect(settingsForServer(chosen, { model: 'small', pinned: false })).toEqual({
      model: 'small',
      system: 'Be brief.',
      temperature: 1,
      max_tokens: null,
    });
    expect(settingsForServer(chosen, { model: 'small', pinned: true }).system).toBeNull();
    expect(settingsForServer({ ...chosen, system: '' }, { model: '', pinned: false })).toMatchObject({
      model: null,
      system: null,
    });
  });

  it('says why saving failed in the server’s words when it gave some', () => {
    expect(refusalMessage(new ApiError(403, { reason: 'Not that model.', code: 'not_allowed' }))).toBe(
      'Not that model.',
    );
    expect(refusalMessage(new ApiError(404))).toMatch(/does not exist/);
    expect(refusalMessage(new TypeError('Failed to fetch'))).toMatch(/Could not reach the server/);
  });
});

describe('useConversationSettings', () => {
  const props = (fields = {}) => ({
    conversationsUrl: '/api/conversations/',
    csrfToken: 'tok',
    conversation: null,
    ready: READY,
    models: MODELS,
    defaultModel: 'small',
    save: vi.fn(async (_url, _id, settings) => settings),
    ...fields,
  });

  it('takes a conversation’s settings when it opens, and a new chat starts from the defaults', () => {
    const hook = renderHook(useConversationSettings, props());
    act(() => hook.result.current.loaded({ id: ID, settings: { model: 'large', system: 'Hi.', temperature: 0.2 } }));
    hook.rerender(props({ conversation: ID }));
    expect(hook.result.current.model).toBe('large');
    expect(hook.result.current.frame).toEqual({ system: 'Hi.', temperature: 0.2, max_tokens: null });

    hook.rerender(props({ conversation: null }));
    expect(hook.result.current.model).toBe('small');
    expect(hook.result.current.frame).toEqual({ system: '', temperature: null, max_tokens: null });
    hook.unmount();
  });

  it('keeps a new chat’s settings when its first answer names the conversation', () => {
    const hook = renderHook(useConversationSettings, props());
    act(() => hook.result.current.panel.toggle());
    act(() => hook.result.current.panel.change('temperature', '1.2'));
    act(() => {
      hook.result.current.panel.submit();
    });
    hook.rerender(props({ conversation: ID }));
    expect(hook.result.current.frame.temperature).toBe(1.2);
    hook.unmount();
  });

  it('falls back to the default model when the server no longer offers the one remembered', () => {
    const hook = renderHook(useConversationSettings, props());
    act(() => hook.result.current.loaded({ id: ID, settings: { model: 'retired' } }));
    expect(hook.result.current.model).toBe('small');
    hook.unmount();
  });

  it('leaves the system instruction out of prompts while the server pins its own', () => {
    const hook = renderHook(useConversationSettings, props({ ready: { ...READY, system_pinned: true } }));
    act(() => hook.result.current.loaded({ id: ID, settings: { system: 'From before.' } }));
    expect(hook.result.current.pinned).toBe(true);
    expect(hook.result.current.frame.system).toBeNull();
    hook.unmount();
  });

  it('takes the page config\'s word that the instruction is pinned until the socket says', () => {
    const hook = renderHook(useConversationSettings, props({ ready: null, pinnedByConfig: true }));
    expect(hook.result.current.pinned).toBe(true);
    hook.rerender(props({ ready: READY, pinnedByConfig: true }));
    expect(hook.result.current.pinned).toBe(false); // `ready` is the server's latest word
    hook.unmount();
  });

  it('saves a model picked in the composer for the open conversation', async () => {
    const save = vi.fn(async (_url, _id, settings) => ({ model: settings.model }));
    const hook = renderHook(useConversationSettings, props({ conversation: ID, save }));
    await act(async () => {
      hook.result.current.chooseModel('large');
    });
    expect(save).toHaveBeenCalledWith(
      '/api/conversations/',
      ID,
      { model: 'large', system: null, temperature: null, max_tokens: null },
      { csrfToken: 'tok' },
    );
    expect(hook.result.current.model).toBe('large');
    hook.unmount();
  });
});

// ---- in the page ---------------------------------------------------------------------------------------------------

const config = { ...DEFAULT_CONFIG, models: MODELS, defaultModel: 'small', csrfToken: 'the-token' };
const SAVED = {
  id: ID,
  title: 'Old chat',
  settings: { model: 'large', system: 'Answer in French.', temperature: 0.3 },
  exchanges: [],
};

let view;
let fetchMock;
let patchAnswer;

beforeEach(() => {
  FakeSocket.reset();
  sessionStorage.clear();
  window.history.replaceState(null, '', '/');
  patchAnswer = (body) => Response.json({ id: ID, title: SAVED.title, updated: '', settings: body.settings });
  fetchMock = vi.fn(async (url, init) => {
    if (url === '/api/conversations/') return Response.json({ conversations: [] });
    if (url === `/api/conversations/${ID}/` && init?.method === 'PATCH') return patchAnswer(JSON.parse(init.body));
    if (url === `/api/conversations/${ID}/`) return Response.json(SAVED);
    return new Response('{}', { status: 404 });
  });
  vi.stubGlobal('fetch', fetchMock);
});

afterEach(() => {
  view?.unmount();
  view = undefined;
  vi.unstubAllGlobals();
});

async function settle(ms = 40) {
  await act(async () => {
    await new Promise((resolve) => setTimeout(resolve, ms));
  });
}

const one = (id) => {
  const found = byTestId(view.container, id);
  expect(found, `one [data-testid=${id}]`).toHaveLength(1);
  return found[0];
};

function fill(element, value) {
  const prototype = Object.getPrototypeOf(element);
  const setValue = Object.getOwnPropertyDescriptor(prototype, 'value').set;
  act(() => {
    setValue.call(element, value);
    element.dispatchEvent(new Event(element.tagName === 'SELECT' ? 'change' : 'input', { bubbles: true }));
  });
}

function click(element) {
  act(() => element.click());
}

async function connect(ready = READY) {
  view = render(<App config={config} createSocket={FakeSocket.create} />);
  act(() => FakeSocket.latest().open());
  act(() => FakeSocket.latest().receive(ready));
  await settle();
}

function sendPrompt(text) {
  fill(one('composer'), text);
  act(() => {
    one('composer').dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
  });
}

const settingsButton = () => oneByRole(view.container, 'button', { name: 'Settings' });
const prompts = () => FakeSocket.latest().sent.filter((frame) => frame.type === 'prompt');

describe('the Settings panel', () => {
  it('opens from its button, sets a new chat’s settings, and sends them with the first prompt', async () => {
    await connect();
    const button = settingsButton();
    expect(button.getAttribute('aria-expanded')).toBe('false');
    click(button);
    expect(button.getAttribute('aria-expanded')).toBe('true');
    expect(document.activeElement).toBe(one('settings-model')); // the first field
    expect(view.container.textContent).toContain('Settings for the new chat');

    fill(one('settings-model'), 'large');
    fill(one('settings-system'), 'Answer in haiku.');
    fill(one('settings-temperature'), '0.9');
    fill(one('settings-max-tokens'), '200');
    click(one('settings-save'));

    expect(byTestId(view.container, 'settings-panel')).toHaveLength(0);
    expect(document.activeElement).toBe(button);
    expect(one('model').value).toBe('large'); // the composer's picker is the same setting
    sendPrompt('Hello');
    expect(prompts()).toEqual([
      expect.objectContaining({
        content: 'Hello',
        model: 'large',
        system: 'Answer in haiku.',
        temperature: 0.9,
        max_tokens: 200,
      }),
    ]);
    expect(fetchMock.mock.calls.some(([, init]) => init?.method === 'PATCH')).toBe(false); // a new chat: no PATCH
  });

  it('says what is wrong with a field and keeps the panel open', async () => {
    await connect();
    click(settingsButton());
    fill(one('settings-temperature'), '7');
    click(one('settings-save'));
    expect(oneByRole(view.container, 'alert').textContent).toMatch(/^Temperature must be a number from 0 to 2/);
    expect(one('settings-panel')).toBeTruthy();
  });

  it('closes on Escape, unchanged, with focus back on its button', async () => {
    await connect();
    click(settingsButton());
    fill(one('settings-temperature'), '1.5');
    act(() => {
      one('settings-temperature').dispatchEvent(
        new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true }),
      );
    });
    expect(byTestId(view.container, 'settings-panel')).toHaveLength(0);
    expect(document.activeElement).toBe(settingsButton());
    sendPrompt('Hello');
    expect(prompts()[0].temperature).toBeUndefined();
  });

  it('shows an opened conversation’s settings and saves changes to the server with the CSRF token', async () => {
    window.history.replaceState(null, '', `/#${ID}`);
    await connect();
    await settle();
    click(settingsButton());
    expect(view.container.textContent).toContain('Settings for this conversation');
    expect(one('settings-model').value).toBe('large');
    expect(one('settings-system').value).toBe('Answer in French.');
    expect(one('settings-temperature').value).toBe('0.3');
    expect(one('settings-max-tokens').value).toBe('');

    fill(one('settings-max-tokens'), '64');
    click(one('settings-save'));
    await settle();

    const [url, init] = fetchMock.mock.calls.find(([, request]) => request?.method === 'PATCH');
    expect(url).toBe(`/api/conversations/${ID}/`);
    expect(init.headers['X-CSRFToken']).toBe('the-token');
    expect(JSON.parse(init.body)).toEqual({
      settings: { model: 'large', system: 'Answer in French.', temperature: 0.3, max_tokens: 64 },
    });
    expect(byTestId(view.container, 'settings-panel')).toHaveLength(0);
    sendPrompt('Bonjour');
    expect(prompts()[0]).toMatchObject({ conversation: ID, model: 'large', system: 'Answer in French.', max_tokens: 64 });
  });

  it('shows the server’s refusal and keeps the panel open', async () => {
    window.history.replaceState(null, '', `/#${ID}`);
    patchAnswer = () => Response.json({ error: 'Not today.', code: 'not_allowed' }, { status: 403 });
    await connect();
    await settle();
    click(settingsButton());
    fill(one('settings-temperature'), '1');
    click(one('settings-save'));
    await settle();
    expect(oneByRole(view.container, 'alert').textContent).toBe('Not today.');
    expect(one('settings-panel')).toBeTruthy();
    expect(one('settings-save').disabled).toBe(false);
  });

  it('hides the system instruction when the deployment sets it, and sends none', async () => {
    await connect({ ...READY, system_pinned: true });
    click(settingsButton());
    expect(byTestId(view.container, 'settings-system')).toHaveLength(0);
    expect(one('settings-system-pinned').textContent).toMatch(/set by this deployment/);
    click(one('settings-save'));
    sendPrompt('Hello');
    expect(prompts()[0]).not.toHaveProperty('system');
  });

  it('says when the chosen model sets its own temperature, and still sends the one set for the others', async () => {
    await connect({ ...READY, own_temperature: ['large'] });
    click(settingsButton());
    expect(byTestId(view.container, 'settings-own-temperature')).toHaveLength(0); // 'small' takes one

    fill(one('settings-model'), 'large');
    fill(one('settings-temperature'), '0.4');

    expect(one('settings-own-temperature').textContent).toBe(
      'large sets its own temperature: the one here is not used with it.',
    );
    click(one('settings-save'));
    sendPrompt('Hello');
    expect(prompts()[0]).toMatchObject({ model: 'large', temperature: 0.4 });
  });

  it('starts a new chat from the defaults', async () => {
    window.history.replaceState(null, '', `/#${ID}`);
    await connect();
    await settle();
    expect(one('model').value).toBe('large');
    act(() => {
      window.history.pushState(null, '', '/');
      window.dispatchEvent(new PopStateEvent('popstate'));
    });
    await settle();
    expect(one('model').value).toBe('small');
    sendPrompt('Fresh');
    expect(prompts()[0]).not.toHaveProperty('system');
    expect(prompts()[0]).not.toHaveProperty('temperature');
  });
});
