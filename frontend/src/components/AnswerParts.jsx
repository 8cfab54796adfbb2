import { memo } from 'react';
import { Markdown } from '../markdown/Markdown.jsx';
import { reasoningPhase } from '../state/answerParts.js';
import { ThinkingSection } from './ThinkingSection.jsx';
import { ToolCallCard } from './ToolCallCard.jsx';

/**
 * An answer's parts in the order the model wrote them: Thinking sections, answer text (markdown) and tool cards.
 *
 * Each part is memoised on its own object, which the reducer replaces only when that part changes, so a frame
 * re-renders only the part it grew. When the last part is not text (nothing came yet, or the model is thinking or
 * calling a tool) an empty text block follows, where the answer will appear: it has the key the next text part will
 * have, so that part takes it over instead of mounting anew.
 *
 * @param {{exchange: import('../state/types.js').Exchange}} props
 */
export function AnswerParts({ exchange }) {
  const { parts } = exchange;
  const streaming = exchange.status === 'streaming';
  const last = parts[parts.length - 1];
  const cursor = streaming && textComesNext(last);
  return (
    <>
      {parts.map((part, index) => {
        if (part.kind === 'reasoning') {
          return <ThinkingSection key={index} part={part} phase={reasoningPhase(parts, index, streaming)} />;
        }
        if (part.kind === 'tool') return <ToolCallCard key={index} part={part} />;
        return <AnswerText key={index} text={part.text} streaming={streaming} live={cursor && part === last} />;
      })}
      {last?.kind !== 'text' && <AnswerText key={parts.length} text="" streaming={streaming} live={cursor} />}
    </>
  );
}

/**
 * Whether the model's next output is answer text as far as the page can tell, so the streaming cursor is shown: at
 * the start, while text streams, and after a tool call ended. While it thinks or writes a call, that part shows it.
 * @param {import('../state/types.js').AnswerPart|undefined} last
 */
function textComesNext(last) {
  if (!last || last.kind === 'text') return true;
  return last.kind === 'tool' && (last.status === 'done' || last.status === 'failed');
}

/**
 * A stretch of answer text. A polite live region marked busy while the answer streams, so a screen reader waits for
 * the finished text instead of reading every delta; `live` marks the block still being written (cursor, code not yet
 * highlighted).
 * @type {import('react').NamedExoticComponent<{text: string, streaming: boolean, live: boolean}>}
 */
const AnswerText = memo(function AnswerText({ text, streaming, live }) {
  return (
    <div
      className="answer"
      data-testid="answer-text"
      aria-live="polite"
      aria-busy={streaming}
      data-streaming={live ? 'true' : undefined}
    >
      <Markdown text={text} streaming={live} />
    </div>
  );
});
