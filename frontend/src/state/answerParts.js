/**
 * An answer as the page shows it: an ordered list of parts (reasoning, answer text, tool calls), built frame by frame
 * while it streams and from the API's `parts` when a conversation is opened.
 *
 * Every function here is pure and returns a new list (or the same one when nothing changed); parts that did not
 * change keep their identity, so the components memoised on a part re-render only the part that grew.
 *
 * @typedef {import('./types.js').AnswerPart} AnswerPart
 * @typedef {import('./types.js').ReasoningPart} ReasoningPart
 * @typedef {import('./types.js').ToolPart} ToolPart
 */

/** The tool statuses that end a call; a call in any other state when its stream ends was stopped. */
const ENDED_TOOL_STATUSES = new Set(['done', 'failed', 'stopped']);

/**
 * Reasoning text: appended to the reasoning part being written, or a new one when something else came last.
 * @param {AnswerPart[]} parts
 * @param {string} text
 * @param {number|null} at the client's clock when the frame arrived, to time the thinking
 * @returns {AnswerPart[]}
 */
export function withReasoning(parts, text, at) {
  const last = parts[parts.length - 1];
  if (last?.kind === 'reasoning') return [...parts.slice(0, -1), { ...last, text: last.text + text }];
  return [...parts, { kind: 'reasoning', text, startedAt: at, durationMs: null }];
}

/**
 * Answer text: appended to the text part being written, or a new one after reasoning or a tool call.
 * @param {AnswerPart[]} parts
 * @param {string} text
 * @param {number|null} at
 * @returns {AnswerPart[]}
 */
export function withText(parts, text, at) {
  const last = parts[parts.length - 1];
  if (last?.kind === 'text') return [...parts.slice(0, -1), { ...last, text: last.text + text }];
  return [...thinkingFinished(parts, at), { kind: 'text', text }];
}

/**
 * A `tool_call`: a new card, its arguments still to be written. A call id already shown is ignored.
 * @param {AnswerPart[]} parts
 * @param {{call: string, name: string}} call
 * @param {number|null} at
 * @returns {AnswerPart[]}
 */
export function withToolCall(parts, { call, name }, at) {
  if (findTool(parts, call) !== -1) return parts;
  const card = { kind: 'tool', call, name, arguments: '', status: 'writing', result: null, error: null };
  return [...thinkingFinished(parts, at), { ...card, durationMs: null }];
}

/**
 * `tool_arguments`: more of the arguments JSON the model writes for a call.
 * @param {AnswerPart[]} parts
 * @param {string} call
 * @param {string} text
 */
export function withToolArguments(parts, call, text) {
  return changeTool(parts, call, (tool) => ({ ...tool, arguments: tool.arguments + text }));
}

/**
 * `tool_running`: the call started running.
 * @param {AnswerPart[]} parts
 * @param {string} call
 */
export function withToolRunning(parts, call) {
  return changeTool(parts, call, (tool) => (tool.status === 'writing' ? { ...tool, status: 'running' } : tool));
}

/**
 * `tool_result`: the call ended, done with its result or failed with its error.
 * @param {AnswerPart[]} parts
 * @param {{call: string, status?: string, result?: unknown, error?: unknown, duration_ms?: unknown}} frame
 */
export function withToolResult(parts, frame) {
  const failed = frame.status === 'failed';
  return changeTool(parts, frame.call, (tool) => ({
    ...tool,
    status: failed ? 'failed' : 'done',
    result: typeof frame.result === 'string' ? frame.result : null,
    error: failed ? toolErrorOf(frame.error) : null,
    durationMs: numberOrNull(frame.duration_ms),
  }));
}

/**
 * The stream ended: a call still being written or running gets no result any more, so it shows as stopped.
 * @param {AnswerPart[]} parts
 * @returns {AnswerPart[]}
 */
export function withToolsStopped(parts) {
  if (!parts.some((part) => part.kind === 'tool' && !ENDED_TOOL_STATUSES.has(part.status))) return parts;
  return parts.map((part) =>
    part.kind === 'tool' && !ENDED_TOOL_STATUSES.has(part.status) ? { ...part, status: 'stopped' } : part,
  );
}

/**
 * The server's timing, once the stream ended (or from the API): when the answer opened with reasoning followed
 * directly by answer text, that reasoning took from the first output (`first_output_ms`) to the first answer text
 * (`ttft_ms`). The server's clock is the better one: it did not wait for the network, nor for a replay.
 * @param {AnswerPart[]} parts
 * @param {number|null} firstOutputMs
 * @param {number|null} ttftMs
 * @returns {AnswerPart[]}
 */
export function withServerThinkingTime(parts, firstOutputMs, ttftMs) {
  const [first, second] = parts;
  if (first?.kind !== 'reasoning' || second?.kind !== 'text') return parts;
  if (typeof firstOutputMs !== 'number' || typeof ttftMs !== 'number' || ttftMs < firstOutputMs) return parts;
  const durationMs = ttftMs - firstOutputMs;
  return durationMs === first.durationMs ? parts : [{ ...first, durationMs }, ...parts.slice(1)];
}

/**
 * Where a reasoning part is in its life: `thinking` while it is the last part of a running stream, `finished` once
 * answer text or a tool call followed it, `ended` when the stream ended while the model was still reasoning.
 * @param {AnswerPart[]} parts
 * @param {number} index
 * @param {boolean} streaming
 * @returns {'thinking'|'finished'|'ended'}
 */
export function reasoningPhase(parts, index, streaming) {
  if (index < parts.length - 1) return 'finished';
  return streaming ? 'thinking' : 'ended';
}

/**
 * Parts as the API (`parts` of an exchange) or sessionStorage hand them over, checked field by field; without
 * `parts` (an older server), the answer as one text part.
 * @param {unknown} saved
 * @param {string} answer
 * @returns {AnswerPart[]}
 */
export function partsFromSaved(saved, answer) {
  if (!Array.isArray(saved)) return answer ? [{ kind: 'text', text: answer }] : [];
  return saved.map(savedPart).filter((part) => part !== null);
}

/** @returns {AnswerPart|null} */
function savedPart(part) {
  if (!part || typeof part !== 'object') return null;
  if (part.kind === 'reasoning' && typeof part.text === 'string') {
    return { kind: 'reasoning', text: part.text, startedAt: null, durationMs: numberOrNull(part.durationMs) };
  }
  if (part.kind === 'text' && typeof part.text === 'string') return { kind: 'text', text: part.text };
  if (part.kind === 'tool' && typeof part.call === 'string' && typeof part.name === 'string') {
    return {
      kind: 'tool',
      call: part.call,
      name: part.name,
      arguments: typeof part.arguments === 'string' ? part.arguments : '',
      status: ['writing', 'running', 'done', 'failed', 'stopped'].includes(part.status) ? part.status : 'stopped',
      result: typeof part.result === 'string' ? part.result : null,
      error: part.error ? toolErrorOf(part.error) : null,
      durationMs: numberOrNull(part.duration_ms ?? part.durationMs),
    };
  }
  return null;
}

/** The reasoning being written is finished by the output that follows it; the client's clock times it. */
function thinkingFinished(parts, at) {
  const last = parts[parts.length - 1];
  if (last?.kind !== 'reasoning' || last.durationMs !== null) return parts;
  if (typeof at !== 'number' || typeof last.startedAt !== 'number') return parts;
  return [...parts.slice(0, -1), { ...last, durationMs: Math.max(0, at - last.startedAt) }];
}

function findTool(parts, call) {
  return parts.findIndex((part) => part.kind === 'tool' && part.call === call);
}

/** Applies `change` to the card of `call`; frames about a call not shown are ignored. */
function changeTool(parts, call, change) {
  const index = findTool(parts, call);
  if (index === -1) return parts;
  const changed = change(/** @type {ToolPart} */ (parts[index]));
  return changed === parts[index] ? parts : parts.map((part, at) => (at === index ? changed : part));
}

function toolErrorOf(error) {
  return {
    code: String(error?.code ?? 'tool_failed'),
    message: String(error?.message ?? 'The tool failed.'),
  };
}

function numberOrNull(value) {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}
