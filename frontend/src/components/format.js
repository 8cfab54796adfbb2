/**
 * Numbers and dates as a person reads them. Pure, so the components stay about layout.
 */

/** @param {number} ms @returns {string} "230 ms", "4.1 s", "2 min 5 s" */
export function formatDuration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

/** @param {number} rate tokens per second @returns {string} */
export function formatRate(rate) {
  return `${rate >= 100 ? Math.round(rate) : rate.toFixed(1)} tokens/s`;
}

/**
 * "just now", "5 min ago", "3 h ago", "yesterday", or a date: the sidebar needs order more than precision.
 * @param {string} iso
 * @param {Date} [now]
 */
export function formatUpdated(iso, now = new Date()) {
  const then = new Date(iso);
  if (Number.isNaN(then.getTime())) return '';
  const minutes = Math.floor((now.getTime() - then.getTime()) / 60_000);
  if (minutes < 1) return 'just now';
  if (minutes < 60) return `${minutes} min ago`;
  if (minutes < 24 * 60) return `${Math.floor(minutes / 60)} h ago`;
  if (minutes < 48 * 60) return 'yesterday';
  const sameYear = then.getFullYear() === now.getFullYear();
  return then.toLocaleDateString(undefined, {
    month: 'short',
    day: 'numeric',
    ...(sameYear ? {} : { year: 'numeric' }),
  });
}

/**
 * How long the model thought, as the Thinking section's title says it: "0.4 s", "4 s", "2 min 5 s".
 * @param {number} ms
 */
export function formatThinkingTime(ms) {
  if (ms < 950) return `${Math.max(0.1, ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

/**
 * JSON text laid out for reading (two-space indent) when it parses as an object or array; anything else as it is.
 * The result is only ever shown as text.
 * @param {string} text
 */
export function readableJson(text) {
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === 'object' ? JSON.stringify(value, null, 2) : text;
  } catch {
    return text;
  }
}
