/**
 * Versions: a conversation is a tree of exchanges, and the page shows one path through it.
 *
 * Each exchange names its `parent`, the exchange whose answer it follows (null: the conversation's first). A
 * regenerated answer or an edited question is a new exchange beside the one it replaces, with the same parent: its
 * siblings are its versions, and the "2 / 3" switch moves between them. At each branch the path takes the version
 * the person chose (`state.chosen`, by the parent's stream id; the root is '') or else the one that leads to the
 * newest exchange, so that what was written last is what a page shows, the same rule the server applies to a
 * prompt that names no parent. A queued prompt (parent undefined) follows whatever ends the path when it goes out.
 *
 * Pure functions of the chat state; the reducer keeps `chosen`, the components draw the path.
 *
 * @typedef {import('./types.js').ChatState} ChatState
 * @typedef {import('./types.js').Exchange} Exchange
 * @typedef {{exchange: Exchange, version: number, versions: Exchange[]}} ShownExchange the exchange, its place
 *   among its versions (from 1) and all of them, oldest first
 */

/** The `chosen` key of the branch an exchange sits in: its parent's stream id, or '' at the root. */
export function branchOf(/** @type {Exchange} */ exchange) {
  return exchange.parent ?? '';
}

/**
 * The exchanges shown, in order, each with its versions.
 * @param {ChatState} state
 * @returns {ShownExchange[]}
 */
export function shownPath(state) {
  const placed = state.exchanges.filter((exchange) => exchange.parent !== undefined);
  const children = childrenByBranch(placed);
  const newest = newestBelow(placed);
  const path = [];
  let branch = '';
  for (let versions = children.get(branch); versions; versions = children.get(branch)) {
    const exchange = pick(versions, state.chosen[branch], newest);
    path.push({ exchange, version: versions.indexOf(exchange) + 1, versions });
    if (!exchange.stream) break; // not started: nothing can follow it yet
    branch = exchange.stream;
  }
  const queued = state.exchanges.filter((exchange) => exchange.parent === undefined);
  return [...path, ...queued.map((exchange) => ({ exchange, version: 1, versions: [exchange] }))];
}

/**
 * The stream id a new prompt follows: the last exchange shown that the server knows, or null in an empty chat.
 * @param {ChatState} state
 * @returns {string|null}
 */
export function pathEnd(state) {
  const started = shownPath(state)
    .map(({ exchange }) => exchange.stream)
    .filter((stream) => stream !== null);
  return started.at(-1) ?? null;
}

/**
 * `chosen` with the path to `exchange` taken at every branch above it, so that it is shown.
 * @param {ChatState} state
 * @param {Exchange} exchange
 * @returns {Record<string, string>}
 */
export function choosing(state, exchange) {
  const chosen = { ...state.chosen };
  const byStream = new Map(state.exchanges.filter((e) => e.stream).map((e) => [e.stream, e]));
  const seen = new Set();
  for (let node = exchange; node && !seen.has(node.key); node = byStream.get(node.parent ?? '')) {
    seen.add(node.key);
    if (node.parent === undefined) break;
    chosen[branchOf(node)] = node.key;
  }
  return chosen;
}

function childrenByBranch(exchanges) {
  const children = new Map();
  for (const exchange of exchanges) {
    const branch = branchOf(exchange);
    children.set(branch, [...(children.get(branch) ?? []), exchange]);
  }
  return children;
}

/** For each exchange (by key), the place in the list of the newest exchange at or below it. */
function newestBelow(exchanges) {
  const newest = new Map();
  const byStream = new Map(exchanges.filter((e) => e.stream).map((e) => [e.stream, e]));
  // Children come after their parents, so going backwards every exchange is done before its parent.
  for (let index = exchanges.length - 1; index >= 0; index -= 1) {
    const exchange = exchanges[index];
    const own = Math.max(newest.get(exchange.key) ?? index, index);
    newest.set(exchange.key, own);
    const parent = exchange.parent ? byStream.get(exchange.parent) : undefined;
    if (parent) newest.set(parent.key, Math.max(newest.get(parent.key) ?? -1, own));
  }
  return newest;
}

function pick(versions, chosenKey, newest) {
  const chosen = versions.find((exchange) => exchange.key === chosenKey);
  if (chosen) return chosen;
  return versions.reduce((best, exchange) => (newest.get(exchange.key) > newest.get(best.key) ? exchange : best));
}
