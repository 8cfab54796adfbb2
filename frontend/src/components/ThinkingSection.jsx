import { memo, useId } from 'react';
import { useDisclosure } from '../hooks/useDisclosure.js';
import { Disclosure } from './Disclosure.jsx';
import { formatThinkingTime } from './format.js';

/**
 * The model's reasoning, above what it led to: open while the model thinks, closed by itself once the answer (or a
 * tool call) begins, and the person can open or close it at any time. Its button, which also names the group, says
 * "Thinking" while it streams and "Thought for 4 s" after.
 *
 * The text is plain (never markdown, never HTML) and split into paragraphs, each memoised, so a long reasoning
 * re-renders only its last paragraph per frame; a closed section renders no text at all.
 *
 * @param {{part: import('../state/types.js').ReasoningPart, phase: 'thinking'|'finished'|'ended'}} props
 */
export const ThinkingSection = memo(function ThinkingSection({ part, phase }) {
  const [open, toggle] = useDisclosure(phase === 'thinking');
  const buttonId = useId();
  return (
    <div className="thinking" role="group" aria-labelledby={buttonId} data-testid="thinking" data-phase={phase}>
      <Disclosure
        label={thinkingLabel(phase, part.durationMs)}
        open={open}
        onToggle={toggle}
        buttonId={buttonId}
        panelClassName="thinking-text"
      >
        <ReasoningText text={part.text} />
      </Disclosure>
    </div>
  );
});

/**
 * @param {'thinking'|'finished'|'ended'} phase
 * @param {number|null} durationMs
 */
export function thinkingLabel(phase, durationMs) {
  if (phase === 'thinking') return 'Thinking';
  if (phase === 'finished' && durationMs !== null) return `Thought for ${formatThinkingTime(durationMs)}`;
  return 'Reasoning';
}

function ReasoningText({ text }) {
  return splitParagraphs(text).map((paragraph, index) => <Paragraph key={index} text={paragraph} />);
}

const Paragraph = memo(function Paragraph({ text }) {
  return <p>{text}</p>;
});

/** Paragraphs are separated by blank lines; single line breaks stay inside (the CSS keeps them). */
function splitParagraphs(text) {
  return text.split(/\n[ \t]*\n/).filter((paragraph) => paragraph.trim() !== '');
}
