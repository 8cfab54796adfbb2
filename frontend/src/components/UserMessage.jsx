import { useRef, useState } from 'react';
import { useTouchTyping } from '../hooks/useTouchTyping.js';
import { CopyButton } from './CopyButton.jsx';
import { PencilIcon } from './icons.jsx';
import { VersionSwitch } from './VersionSwitch.jsx';

/** What a queued prompt waits for, in the person's words. */
const QUEUED_NOTE = 'queued: sent when the answer above ends';

/**
 * What the person asked, as they typed it (plain text, line breaks kept), with a Copy button, an Edit button and
 * the switch between its versions. A prompt taken but not sent yet says so: it waits for the connection, or for the
 * answer before it to end. Edit turns the message into a box: sending it asks again from there, as a new version.
 * @param {{exchange: import('../state/types.js').Exchange, waitingFor?: 'connection'|'answer',
 *   version?: number, versions?: import('../state/types.js').Exchange[],
 *   onShowVersion?: (exchange: import('../state/types.js').Exchange) => void,
 *   onEdit?: (exchange: import('../state/types.js').Exchange, content: string) => boolean,
 *   editDisabled?: boolean, maxChars?: number}} props onEdit returns whether the new version went out
 */
export function UserMessage({
  exchange,
  waitingFor = 'answer',
  version = 1,
  versions = [exchange],
  onShowVersion,
  onEdit,
  editDisabled = false,
  maxChars,
}) {
  const [editing, setEditing] = useState(false);
  const editButton = useRef(/** @type {HTMLButtonElement|null} */ (null));
  const notSent = exchange.status === 'failed' && exchange.stream === null;
  const queued = exchange.status === 'queued';
  const close = () => {
    setEditing(false);
    // The box goes away; keyboard focus goes back to where it came from.
    requestAnimationFrame(() => editButton.current?.focus());
  };
  return (
    <article
      className="message user"
      data-testid="message-user"
      data-status={queued ? 'queued' : undefined}
      aria-label="You said"
    >
      {editing && onEdit ? (
        <EditBox
          initial={exchange.prompt}
          disabled={editDisabled}
          maxChars={maxChars}
          onCancel={close}
          onSend={(content) => {
            if (onEdit(exchange, content)) setEditing(false);
          }}
        />
      ) : (
        <div className="bubble">{exchange.prompt}</div>
      )}
      <div className="message-actions">
        {queued && (
          <p className="message-note queued-note" data-testid="queued-note">
            {waitingFor === 'connection' ? 'waiting for the connection: sent once connected' : QUEUED_NOTE}
          </p>
        )}
        {notSent && <p className="message-note">not sent</p>}
        {onShowVersion && <VersionSwitch version={version} versions={versions} onShow={onShowVersion} />}
        {!editing && <CopyButton text={exchange.prompt} />}
        {!editing && onEdit && exchange.stream !== null && (
          <button
            ref={editButton}
            type="button"
            className="button small ghost message-edit"
            aria-label="Edit"
            title="Edit"
            disabled={editDisabled}
            onClick={() => setEditing(true)}
          >
            <PencilIcon />
          </button>
        )}
      </div>
    </article>
  );
}

/**
 * The box an edited question is written in: Enter (without Shift) or Send asks again, Escape or Cancel gives up. On a
 * touch screen Enter is a new line, as in the composer, and Send sends.
 * @param {{initial: string, disabled: boolean, maxChars?: number, onCancel: () => void,
 *   onSend: (content: string) => void}} props
 */
function EditBox({ initial, disabled, maxChars, onCancel, onSend }) {
  const [text, setText] = useState(initial);
  const touch = useTouchTyping();
  const blank = text.trim() === '';
  const tooLong = maxChars !== undefined && text.length > maxChars;
  const send = () => {
    if (!disabled && !blank && !tooLong) onSend(text);
  };
  return (
    <form
      className="edit-box"
      onSubmit={(event) => {
        event.preventDefault();
        send();
      }}
    >
      <textarea
        className="edit-input"
        aria-label="Edit your message"
        value={text}
        rows={Math.min(8, Math.max(2, text.split('\n').length))}
        autoFocus
        onChange={(event) => setText(event.target.value)}
        onKeyDown={(event) => {
          if (event.key === 'Escape') {
            event.stopPropagation();
            onCancel();
          } else if (event.key === 'Enter' && !event.shiftKey && !touch && !event.nativeEvent.isComposing) {
            event.preventDefault();
            send();
          }
        }}
      />
      {tooLong && <p className="message-note">The message is too long (at most {maxChars.toLocaleString()} characters).</p>}
      <div className="edit-actions">
        <button type="button" className="button small ghost" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="button small primary" disabled={disabled || blank || tooLong}>
          Send
        </button>
      </div>
    </form>
  );
}
