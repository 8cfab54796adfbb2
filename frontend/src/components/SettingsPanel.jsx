import { useEffect, useId, useRef } from 'react';

/** The panel's id, for its button's `aria-controls`: there is one panel on the page. */
const PANEL_ID = 'conversation-settings';

/**
 * @typedef {ReturnType<typeof import('../hooks/useConversationSettings.js').useConversationSettings>} ConversationSettings
 */

/**
 * The button that opens and closes the Settings panel (the disclosure pattern), next to the composer's model.
 * @param {{settings: ConversationSettings}} props
 */
export function SettingsButton({ settings }) {
  const { panel } = settings;
  return (
    <button
      type="button"
      ref={panel.buttonRef}
      className="button small ghost settings-button"
      aria-expanded={panel.open}
      aria-controls={PANEL_ID}
      onClick={panel.toggle}
      data-testid="settings-button"
    >
      <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false">
        <path
          d="M4 7h10M18 7h2M4 17h2M10 17h10M14 4v6M8 14v6"
          stroke="currentColor"
          strokeWidth="2"
          strokeLinecap="round"
          fill="none"
        />
      </svg>
      <span>Settings</span>
    </button>
  );
}

/**
 * The settings of the open conversation, or of the new chat: model, system instruction (unless the deployment sets
 * it), temperature and max tokens. A form above the message box, not a modal: Escape or Cancel closes it and focus
 * goes back to its button. Closed, it shows only an error saving left (a model picked in the composer may be
 * refused).
 *
 * A model that sets its own temperature (`ready.own_temperature`) is said to, below the field: the value is kept for
 * the conversation's other models, and not used with that one.
 *
 * @param {{settings: ConversationSettings, models: string[],
 *   limits: {max_prompt_chars: number, max_tokens: number}, ownTemperature?: string[]}} props
 */
export function SettingsPanel({ settings, models, limits, ownTemperature = [] }) {
  const { panel, pinned } = settings;
  const ids = useId();
  const first = useRef(/** @type {HTMLSelectElement|HTMLTextAreaElement|HTMLInputElement|null} */ (null));
  useEffect(() => {
    if (panel.open) first.current?.focus();
  }, [panel.open]);

  if (!panel.open) {
    return (
      <div id={PANEL_ID} hidden={!panel.error}>
        {panel.error && (
          <div className="settings-failed" role="alert">
            <span>{panel.error}</span>
            <button type="button" className="button small ghost" onClick={panel.dismissError}>
              Dismiss
            </button>
          </div>
        )}
      </div>
    );
  }

  const field = (/** @type {keyof import('../hooks/useConversationSettings.js').SettingsForm} */ name) => ({
    id: `${ids}-${name}`,
    value: panel.form[name],
    onChange: (event) => panel.change(name, event.target.value),
  });
  const firstField = (/** @type {string} */ name) =>
    (models.length > 1 ? name === 'model' : pinned ? name === 'temperature' : name === 'system') ? first : undefined;

  return (
    <div id={PANEL_ID}>
      <form
        className="settings-panel"
        aria-labelledby={`${ids}-title`}
        data-testid="settings-panel"
        // The fields are checked as the server checks them, and said so in words: not by the browser's own bubbles
        // (which would also refuse a temperature off the spinner's 0.1 steps).
        noValidate
        onSubmit={(event) => {
          event.preventDefault();
          if (!panel.saving) panel.submit();
        }}
        onKeyDown={(event) => {
          if (event.key !== 'Escape' || event.nativeEvent.isComposing) return;
          event.preventDefault(); // not also a Stop of the running answer
          panel.close();
        }}
      >
        <h2 id={`${ids}-title`} className="settings-title">
          {panel.newChat ? 'Settings for the new chat' : 'Settings for this conversation'}
        </h2>
        {models.length > 1 && (
          <div className="settings-field">
            <label htmlFor={`${ids}-model`}>Model</label>
            <select {...field('model')} ref={firstField('model')} data-testid="settings-model">
              {models.map((name) => (
                <option key={name} value={name}>
                  {name}
                </option>
              ))}
            </select>
          </div>
        )}
        {pinned ? (
          <p className="settings-note" data-testid="settings-system-pinned">
            The system instruction is set by this deployment.
          </p>
        ) : (
          <div className="settings-field">
            <label htmlFor={`${ids}-system`}>System instruction</label>
            <textarea
              {...field('system')}
              ref={firstField('system')}
              rows={3}
              maxLength={limits.max_prompt_chars}
              placeholder="None"
              data-testid="settings-system"
            />
          </div>
        )}
        <div className="settings-numbers">
          <div className="settings-field">
            <label htmlFor={`${ids}-temperature`}>Temperature</label>
            <input
              {...field('temperature')}
              ref={firstField('temperature')}
              type="number"
              inputMode="decimal"
              min={0}
              max={2}
              step={0.1}
              placeholder="Default"
              aria-describedby={`${ids}-hint`}
              data-testid="settings-temperature"
            />
          </div>
          <div className="settings-field">
            <label htmlFor={`${ids}-max_tokens`}>Max tokens</label>
            <input
              {...field('max_tokens')}
              type="number"
              inputMode="numeric"
              min={1}
              max={limits.max_tokens}
              step={1}
              placeholder="Default"
              aria-describedby={`${ids}-hint`}
              data-testid="settings-max-tokens"
            />
          </div>
        </div>
        {ownTemperature.includes(panel.form.model) && (
          <p className="settings-note" data-testid="settings-own-temperature">
            {panel.form.model} sets its own temperature: the one here is not used with it.
          </p>
        )}
        <p id={`${ids}-hint`} className="settings-hint">
          Temperature from 0 to 2, max tokens up to {limits.max_tokens.toLocaleString()}; empty is the model’s default.{' '}
          {panel.newChat
            ? 'They go with the first message, and the conversation keeps them.'
            : 'The conversation keeps them.'}
        </p>
        {panel.error && (
          <p className="settings-error" role="alert">
            {panel.error}
          </p>
        )}
        <div className="settings-actions">
          <button type="button" className="button small ghost" onClick={panel.close}>
            Cancel
          </button>
          <button type="submit" className="button small primary" disabled={panel.saving} data-testid="settings-save">
            {panel.saving ? 'Saving…' : 'Save'}
          </button>
        </div>
      </form>
    </div>
  );
}
