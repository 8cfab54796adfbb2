import { useCallback, useEffect, useRef } from 'react';

const STORAGE_KEY = 'streaming-chat.streams';
/** More than a client can run at once; older entries (streams that ended while another conversation was open) go. */
const KEPT = 10;
/**
 * How long the text of a growing answer may wait before it is written. Writing a 150 KB answer on every frame cost
 * the page its frame budget; a reload (or a closed tab) writes at once, on `pagehide` and `visibilitychange`.
 */
export const PERSIST_EVERY_MS = 1000;

/** @typedef {import('../state/types.js').PersistedStream} PersistedStream */
/** @typedef {import('../state/types.js').Exchange} Exchange */

/**
 * Keeps the answers that are streaming in this tab's sessionStorage (stream, conversation, prompt, text and seq so
 * far, and the parts shown with their place in the stream's record), so that after a reload the conversation shows
 * what it had and resumes from there instead of from nothing. An entry goes as soon as its stream is seen ending,
 * and a new one is written as soon as its stream starts; the growing text of a running one is written at most every
 * `PERSIST_EVERY_MS`, and at once when the page is hidden or unloaded, so a reload resumes from where it was.
 *
 * @param {Exchange[]} exchanges what is shown now
 * @returns {() => PersistedStream[]} what is kept, for the next conversation that is opened
 */
export function usePersistedStreams(exchanges) {
  const entries = useRef(/** @type {PersistedStream[]|null} */ (null));
  if (entries.current === null) entries.current = readPersistedStreams();
  const timer = useRef(/** @type {ReturnType<typeof setTimeout>|null} */ (null));
  const write = useCallback(() => {
    if (timer.current !== null) clearTimeout(timer.current);
    timer.current = null;
    writePersistedStreams(entries.current ?? []);
  }, []);
  /** Writes what is waiting for the timer, if anything. */
  const flush = useCallback(() => {
    if (timer.current !== null) write();
  }, [write]);
  useEffect(() => {
    const previous = entries.current ?? [];
    const next = updatedStreams(previous, exchanges);
    if (next === previous) return;
    entries.current = next;
    if (sameStreams(previous, next)) timer.current ??= setTimeout(write, PERSIST_EVERY_MS);
    else write();
  }, [exchanges, write]);
  useEffect(() => {
    const onHide = () => {
      if (document.visibilityState === 'hidden') flush();
    };
    window.addEventListener('pagehide', flush);
    document.addEventListener('visibilitychange', onHide);
    return () => {
      window.removeEventListener('pagehide', flush);
      document.removeEventListener('visibilitychange', onHide);
      flush();
    };
  }, [flush]);
  return useCallback(() => entries.current ?? [], []);
}

/**
 * The kept entries after looking at what is shown: a streaming exchange's entry is added or brought up to date, an
 * ended one's is dropped, and streams not shown are left as they are (their conversation may be opened again).
 * @param {PersistedStream[]} entries
 * @param {Exchange[]} exchanges
 * @returns {PersistedStream[]} `entries` itself when nothing changed
 */
export function updatedStreams(entries, exchanges) {
  const byStream = new Map(entries.map((entry) => [entry.stream, entry]));
  let changed = false;
  for (const exchange of exchanges) {
    if (!exchange.stream) continue;
    const old = byStream.get(exchange.stream);
    if (exchange.status !== 'streaming') {
      changed = byStream.delete(exchange.stream) || changed;
      continue;
    }
    if (old && old.lastSeq === exchange.lastSeq && old.lastPos === exchange.lastPos && old.answer === exchange.answer) {
      continue;
    }
    byStream.delete(exchange.stream); // re-added last: the most recent entries are the ones kept
    byStream.set(exchange.stream, {
      stream: exchange.stream,
      conversation: exchange.conversation,
      prompt: exchange.prompt,
      answer: exchange.answer,
      lastSeq: exchange.lastSeq,
      lastPos: exchange.lastPos,
      parts: exchange.parts.map(withoutClock),
    });
    changed = true;
  }
  return changed ? [...byStream.values()].slice(-KEPT) : entries;
}

/** Whether two lists of entries are of the same streams (only their contents moved on). */
function sameStreams(before, after) {
  const streams = new Set(before.map((entry) => entry.stream));
  return before.length === after.length && after.every((entry) => streams.has(entry.stream));
}

/** A clock reading means nothing to the next page (its clock starts again), so it is not kept. */
function withoutClock(part) {
  if (part.kind !== 'reasoning') return part;
  const { startedAt: _startedAt, ...kept } = part;
  return kept;
}

/** @returns {PersistedStream[]} the valid entries kept in this tab; none when storage is off or holds junk */
export function readPersistedStreams() {
  try {
    const parsed = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? '[]');
    return Array.isArray(parsed) ? parsed.filter(isEntry) : [];
  } catch {
    return [];
  }
}

/** @param {PersistedStream[]} entries */
function writePersistedStreams(entries) {
  try {
    if (entries.length > 0) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(entries));
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // storage can be disabled or full; a reload then resumes from the start of the answer
  }
}

function isEntry(entry) {
  return (
    entry !== null &&
    typeof entry === 'object' &&
    typeof entry.stream === 'string' &&
    typeof entry.answer === 'string' &&
    Number.isInteger(entry.lastSeq) &&
    entry.lastSeq >= 0
  );
}
