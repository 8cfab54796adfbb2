/**
 * What a screen reader should hear when the chat changes, said once per change rather than once per delta.
 *
 * @typedef {import('./types.js').Exchange} Exchange
 */

/**
 * @param {Exchange[]} before
 * @param {Exchange[]} after
 * @returns {string|null} a sentence for the live status region, or null when nothing worth saying happened
 */
export function announcementFor(before, after) {
  const previous = new Map(before.map((exchange) => [exchange.key, exchange.status]));
  for (let index = after.length - 1; index >= 0; index -= 1) {
    const exchange = after[index];
    const was = previous.get(exchange.key);
    if (was === exchange.status || (was !== 'streaming' && was !== 'pending')) continue;
    const sentence = sentenceFor(exchange);
    if (sentence) return sentence;
  }
  return null;
}

/** @param {Exchange} exchange */
function sentenceFor(exchange) {
  switch (exchange.status) {
    case 'streaming':
      return 'Answering…';
    case 'completed':
      return exchange.finishReason === 'length' ? 'Answer finished, cut off at the token limit.' : 'Answer finished.';
    case 'cancelled':
      return 'Answer stopped.';
    case 'interrupted':
      return 'The answer was interrupted.';
    case 'failed':
      return exchange.stream
        ? `The answer failed: ${exchange.error?.message ?? ''}`
        : `Not sent: ${exchange.error?.message ?? ''}`;
    default:
      return null;
  }
}

/**
 * @param {string} before connection status
 * @param {string} after
 * @returns {string|null}
 */
export function connectionAnnouncement(before, after) {
  if (before === after) return null;
  if (after === 'reconnecting' && before === 'connected') return 'Connection lost. Reconnecting…';
  if (after === 'connected' && before === 'reconnecting') return 'Connected again.';
  return null;
}
