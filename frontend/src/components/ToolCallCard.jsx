import { memo, useMemo } from 'react';
import { useDisclosure } from '../hooks/useDisclosure.js';
import { Disclosure } from './Disclosure.jsx';
import { formatDuration, readableJson } from './format.js';

/** What each status says, after "Status:" for a screen reader. */
const STATUS_TEXT = {
  writing: 'writing…',
  running: 'running…',
  done: 'done',
  failed: 'failed',
  stopped: 'stopped',
};

/**
 * One tool call of the model: its name and status, the arguments the model wrote, then the error (failed) or the
 * result, behind a disclosure. A group named "Tool call <name>".
 *
 * Arguments and results are written by the model and the tool: they are shown as text only (React escapes it; no
 * markdown, no HTML), as laid-out JSON when they parse as such.
 *
 * @param {{part: import('../state/types.js').ToolPart}} props
 */
export const ToolCallCard = memo(function ToolCallCard({ part }) {
  const ended = part.status === 'done' || part.status === 'failed';
  return (
    <div
      className="tool-call"
      role="group"
      aria-label={`Tool call ${part.name}`}
      data-testid="tool-call"
      data-status={part.status}
      data-call={part.call}
    >
      <div className="tool-call-header">
        <code className="tool-call-name">{part.name}</code>
        <span className="tool-status" data-status={part.status} data-testid="tool-status">
          <span className="sr-only">Status: </span>
          {STATUS_TEXT[part.status] ?? part.status}
          {ended && part.durationMs !== null && ` in ${formatDuration(part.durationMs)}`}
        </span>
      </div>
      <ToolArguments text={part.arguments} complete={part.status !== 'writing'} />
      {part.status === 'failed' && part.error && (
        <p className="tool-error" data-testid="tool-error">
          {part.error.message}
        </p>
      )}
      {part.result !== null && <ToolResult text={part.result} />}
    </div>
  );
});

/** A long text scrolls in its box: the box takes keyboard focus (the arrow keys scroll it) and has a name. */
const SCROLLABLE = { tabIndex: 0, role: 'group' };

/** The arguments as they stream (raw), laid out once the model has finished writing them. */
function ToolArguments({ text, complete }) {
  const shown = useMemo(() => (complete ? readableJson(text) : text), [text, complete]);
  if (shown === '') return null;
  return (
    <pre className="tool-arguments" data-testid="tool-arguments" {...SCROLLABLE} aria-label="Arguments">
      {shown}
    </pre>
  );
}

/** The tool's result, closed at first: it is what the model read, often longer than what the person wants. */
function ToolResult({ text }) {
  const [open, toggle] = useDisclosure(false);
  const shown = useMemo(() => readableJson(text), [text]);
  return (
    <div className="tool-result">
      <Disclosure label="Result" open={open} onToggle={toggle} panelClassName="tool-result-text">
        <pre data-testid="tool-result" {...SCROLLABLE} aria-label="Result">
          {shown}
        </pre>
      </Disclosure>
    </div>
  );
}
