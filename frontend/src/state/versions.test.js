import { describe, expect, it } from 'vitest';
import { chatReducer, initialChatState } from './chatReducer.js';
import { pathEnd, shownPath } from './versions.js';

/** A conversation from the API: [stream, parent, prompt] per exchange, oldest first. */
function loaded(...rows) {
  const exchanges = rows.map(([stream, parent, prompt]) => ({
    stream,
    ...(parent === undefined ? {} : { parent }),
    prompt,
    answer: `${prompt} answered`,
    status: 'completed',
  }));
  return chatReducer(initialChatState(), { type: 'conversationLoaded', detail: { id: 'c-1', exchanges } });
}

const shown = (state) => shownPath(state).map(({ exchange }) => exchange.stream ?? exchange.key);
const show = (state, key, branch) => chatReducer(state, { type: 'versionShown', branch, key });
const start = (stream, request, fields = {}) => ({
  type: 'frame',
  frame: { type: 'start', stream, request, conversation: 'c-1', content: 'Q', ...fields },
});

describe('the path shown through a conversation with versions', () => {
  // a -> b -> c, and b2 (a regenerated b) -> d, and a2 (an edited a) on its own.
  const tree = () =>
    loaded(['a', null, 'Q1'], ['b', 'a', 'Q2'], ['c', 'b', 'Q3'], ['b2', 'a', 'Q2'], ['a2', null, 'Q1 edited'], ['d', 'b2', 'Q3']);

  it('leads to the newest exchange, and each turn knows its versions', () => {
    const state = tree();
    expect(shown(state)).toEqual(['a', 'b2', 'd']);
    expect(shownPath(state).map(({ version, versions }) => `${version}/${versions.length}`)).toEqual(['1/2', '2/2', '1/1']);
    expect(pathEnd(state)).toBe('d');
  });

  it('takes the version chosen at a branch, and below it again the way to the newest', () => {
    let state = show(tree(), 'b', 'a');
    expect(shown(state)).toEqual(['a', 'b', 'c']);
    state = show(state, 'a2', '');
    expect(shown(state)).toEqual(['a2']);
    state = show(state, 'a', '');
    expect(shown(state)).toEqual(['a', 'b', 'c']); // the choice below is kept
  });

  it('shows a new version where it goes, whichever tab made it', () => {
    let state = show(tree(), 'b', 'a');
    state = chatReducer(state, start('b3', 'other-tab', { parent: 'a' }));
    expect(shown(state)).toEqual(['a', 'b3']);
    state = chatReducer(state, { type: 'promptSent', request: 'r-1', content: 'Q1 again', parent: null, placement: { edit: 'a' } });
    expect(shown(state)).toEqual(['r-1']);
    expect(shownPath(state)[0].versions).toHaveLength(3);
  });

  it('puts a queued prompt after the path, and it goes after what ends the path when it is sent', () => {
    let state = chatReducer(tree(), { type: 'promptQueued', request: 'r-q', content: 'Later' });
    expect(shown(state)).toEqual(['a', 'b2', 'd', 'r-q']);
    expect(pathEnd(state)).toBe('d');
    state = chatReducer(state, { type: 'queuedPromptSent', key: 'r-q', conversation: 'c-1', parent: 'd' });
    expect(state.exchanges.at(-1)).toMatchObject({ parent: 'd', placement: { parent: 'd' }, status: 'pending' });
    expect(shown(state)).toEqual(['a', 'b2', 'd', 'r-q']);
  });

  it('reads a server without versions as one line: each exchange after the one before', () => {
    const state = loaded(['a', undefined, 'Q1'], ['b', undefined, 'Q2']);
    expect(state.exchanges.map((exchange) => exchange.parent)).toEqual([null, 'a']);
    const next = chatReducer(state, start('c', 'other-tab'));
    expect(shown(next)).toEqual(['a', 'b', 'c']);
  });

  it('takes the server\'s word on where its own prompt went', () => {
    let state = loaded(['a', null, 'Q1']);
    state = chatReducer(state, { type: 'promptSent', request: 'r-1', content: 'Q2', parent: 'a', placement: { parent: 'a' } });
    state = chatReducer(state, start('b', 'r-1', { parent: 'a' }));
    expect(state.exchanges.at(-1)).toMatchObject({ key: 'r-1', stream: 'b', parent: 'a' });
    expect(shown(state)).toEqual(['a', 'b']);
  });
});
