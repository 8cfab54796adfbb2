import { tokensPerSecond } from '../state/selectors.js';
import { formatDuration, formatRate } from './format.js';

/**
 * Timing and token counts under a finished answer: time to the first output (reasoning or a tool call, when it came
 * before the first word of the answer), time to first token, total time, completion / total tokens and generation
 * speed. Parts the server did not report are left out.
 * @param {{exchange: import('../state/types.js').Exchange}} props
 */
export function AnswerStats({ exchange }) {
  const parts = statParts(exchange);
  if (parts.length === 0) return null;
  return (
    <p className="answer-stats" data-testid="answer-stats">
      {parts.map(({ label, value }, index) => (
        <span key={label} title={label}>
          {index > 0 && <span aria-hidden="true"> · </span>}
          {value}
        </span>
      ))}
    </p>
  );
}

/** @param {import('../state/types.js').Exchange} exchange */
function statParts(exchange) {
  const parts = [];
  // The same moment as the first token unless the model thought or called a tool first: then said apart.
  if (exchange.firstOutputMs != null && exchange.firstOutputMs !== exchange.ttftMs) {
    parts.push({
      label: 'Time to first output (thinking, a tool call or text)',
      value: `${formatDuration(exchange.firstOutputMs)} to first output`,
    });
  }
  if (exchange.ttftMs != null) {
    parts.push({
      label: 'Time to first token of the answer text',
      value: `${formatDuration(exchange.ttftMs)} to first token`,
    });
  }
  if (exchange.durationMs != null) {
    parts.push({ label: 'Duration, from sending to the end', value: `${formatDuration(exchange.durationMs)} total` });
  }
  const usage = exchange.usage;
  if (usage && typeof usage.completion_tokens === 'number') {
    const total = typeof usage.total_tokens === 'number' ? ` / ${usage.total_tokens}` : '';
    parts.push({ label: 'Tokens (completion / total)', value: `${usage.completion_tokens}${total} tokens` });
  }
  const rate = tokensPerSecond(exchange);
  if (rate !== null)
    parts.push({ label: 'Completion tokens per second after the first output', value: formatRate(rate) });
  return parts;
}
