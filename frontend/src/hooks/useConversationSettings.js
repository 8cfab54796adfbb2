import { useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, changeConversationSettings } from '../api.js';
import { limitsOf } from '../state/selectors.js';
import { useLatest } from './useLatest.js';
import { useStableCallback } from './useStableCallback.js';

/**
 * What the open conversation (or the new chat) sends with its prompts, as the page holds it: `model` null is the
 * server's default; `system` '' is none; `temperature` and `max_tokens` null are the model's own.
 * @typedef {{model: string|null, system: string, temperature: number|null, max_tokens: number|null}} Settings
 * @typedef {{model: string, system: string, temperature: string, max_tokens: string}} SettingsForm the panel's
 *   fields as typed
 */

/** @type {Settings} */
export const DEFAULT_SETTINGS = { model: null, system: '', temperature: null, max_tokens: null };

/**
 * A conversation's settings as the server keeps them (fields left out are defaults), in the page's shape. What is
 * not of the expected type is dropped rather than trusted: an older or newer server may send other things.
 * @param {import('../api.js').ConversationSettings|undefined|null} saved
 * @returns {Settings}
 */
export function settingsFromSaved(saved) {
  const number = (value) => (typeof value === 'number' && Number.isFinite(value) ? value : null);
  return {
    model: typeof saved?.model === 'string' ? saved.model : null,
    system: typeof saved?.system === 'string' ? saved.system : '',
    temperature: number(saved?.temperature),
    max_tokens: number(saved?.max_tokens),
  };
}

/**
 * @param {Settings} settings
 * @param {string} model the model in effect
 * @returns {SettingsForm}
 */
export function formFromSettings(settings, model) {
  const text = (value) => (value === null ? '' : String(value));
  return {
    model,
    system: settings.system,
    temperature: text(settings.temperature),
    max_tokens: text(settings.max_tokens),
  };
}

/**
 * The panel's fields checked by the rules the server applies to a prompt (so that a refusal is rare and said at
 * once), or why they cannot be taken. Empty means the default.
 * @param {SettingsForm} form
 * @param {{maxTokens: number}} limits
 * @returns {{settings: Settings, error: null} | {settings: null, error: string}}
 */
export function settingsFromForm(form, { maxTokens }) {
  const refuse = (error) => ({ settings: null, error });
  const temperature = form.temperature.trim() === '' ? null : Number(form.temperature);
  if (temperature !== null && !(Number.isFinite(temperature) && temperature >= 0 && temperature <= 2)) {
    return refuse('Temperature must be a number from 0 to 2, or empty for the model’s default.');
  }
  const tokens = form.max_tokens.trim() === '' ? null : Number(form.max_tokens);
  if (tokens !== null && !(Number.isInteger(tokens) && tokens >= 1 && tokens <= maxTokens)) {
    return refuse(`Max tokens must be a whole number from 1 to ${maxTokens.toLocaleString()}, or empty.`);
  }
  const settings = { model: form.model || null, system: form.system, temperature, max_tokens: tokens };
  return { settings, error: null };
}

/**
 * The body of a settings `PATCH`: every field, null for a default; no system instruction while the server pins
 * its own (it would refuse one).
 * @param {Settings} settings
 * @param {{model: string, pinned: boolean}} context
 */
export function settingsForServer(settings, { model, pinned }) {
  return {
    model: model || null,
    system: pinned || settings.system === '' ? null : settings.system,
    temperature: settings.temperature,
    max_tokens: settings.max_tokens,
  };
}

/** Why saving failed, in words for the person: the server's own when it gave some. */
export function refusalMessage(failure) {
  if (!(failure instanceof ApiError)) return 'Could not reach the server. Check the connection and try again.';
  if (failure.reason) return failure.reason;
  if (failure.status === 404) return 'This conversation does not exist any more.';
  return 'Could not save the settings. Try again.';
}

/**
 * The settings of the open conversation, or of the new chat: the model the composer shows and every prompt names,
 * the system instruction, temperature and max tokens that go with each prompt, and the Settings panel that edits
 * them.
 *
 * The server remembers them per conversation: a new chat's go with its first prompt (the server keeps what that
 * prompt carried), an open conversation's are saved (`PATCH`) when the panel's Save is pressed or the composer's
 * model changes, and opening a conversation takes them from its detail (`loaded`). Starting a new chat resets them.
 *
 * @param {Object} options
 * @param {string} options.conversationsUrl
 * @param {string} options.csrfToken
 * @param {string|null} options.conversation the open conversation, from the reducer
 * @param {import('../state/types.js').ReadyFrame|null} options.ready `system_pinned` and the limits
 * @param {boolean} [options.pinnedByConfig] what the page's config says of `system_pinned`, until `ready` says it
 * @param {string[]} options.models those the person may pick
 * @param {string} options.defaultModel
 * @param {typeof changeConversationSettings} [options.save] the API call (replaced in tests)
 */
export function useConversationSettings({
  conversationsUrl,
  csrfToken,
  conversation,
  ready,
  models,
  defaultModel,
  pinnedByConfig = false,
  save = changeConversationSettings,
}) {
  const [settings, setSettings] = useState(DEFAULT_SETTINGS);
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState(/** @type {SettingsForm} */ (formFromSettings(DEFAULT_SETTINGS, defaultModel)));
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState(/** @type {string|null} */ (null));
  const buttonRef = useRef(/** @type {HTMLButtonElement|null} */ (null));
  const current = useLatest(conversation);
  const pinned = ready ? ready.system_pinned === true : pinnedByConfig;
  const maxTokens = limitsOf(ready).max_tokens;
  const model = settings.model && models.includes(settings.model) ? settings.model : defaultModel;

  /** Closes the panel; focus goes back to its button, as a dialog's does. */
  const close = useStableCallback(() => {
    setOpen(false);
    setError(null);
    buttonRef.current?.focus();
  });

  const reset = useStableCallback((/** @type {Settings} */ next) => {
    setSettings(next);
    setOpen(false);
    setError(null);
  });

  // A new chat starts from the defaults; a new chat's first `start` (null to an id) keeps what it was sent with.
  const previous = useRef(conversation);
  useEffect(() => {
    if (previous.current && !conversation) reset(DEFAULT_SETTINGS);
    previous.current = conversation;
  }, [conversation, reset]);

  /** For the conversation opener: what the conversation just opened remembers. */
  const loaded = useStableCallback((/** @type {import('../api.js').ConversationDetail} */ detail) => {
    reset(settingsFromSaved(detail?.settings));
  });

  /** Saves `next` for the open conversation; resolves to whether it was kept (and still applies here). */
  const persist = useStableCallback(async (/** @type {Settings} */ next, /** @type {string} */ nextModel) => {
    const target = current.current;
    if (!target) return true;
    try {
      const kept = await save(
        conversationsUrl,
        target,
        settingsForServer(next, { model: nextModel, pinned }),
        { csrfToken },
      );
      if (current.current !== target) return false;
      setSettings(settingsFromSaved(kept));
      return true;
    } catch (failure) {
      if (current.current === target) setError(refusalMessage(failure));
      return false;
    }
  });

  /** The composer's model picker: in effect at once, and remembered by the open conversation. */
  const chooseModel = useStableCallback((/** @type {string} */ chosen) => {
    const next = { ...settings, model: chosen };
    setSettings(next);
    setForm((fields) => ({ ...fields, model: chosen }));
    setError(null);
    persist(next, chosen);
  });

  const toggle = useStableCallback(() => {
    if (open) {
      close();
      return;
    }
    setForm(formFromSettings(settings, model));
    setError(null);
    setOpen(true);
  });

  const change = useStableCallback((/** @type {keyof SettingsForm} */ field, /** @type {string} */ value) => {
    setForm((fields) => ({ ...fields, [field]: value }));
  });

  const submit = useStableCallback(async () => {
    const checked = settingsFromForm(form, { maxTokens });
    if (checked.error !== null) {
      setError(checked.error);
      return;
    }
    const next = checked.settings;
    if (!current.current) {
      setSettings(next);
      close();
      return;
    }
    setSaving(true);
    setError(null);
    const kept = await persist(next, next.model ?? model);
    setSaving(false);
    if (kept) close();
  });

  const frame = useMemo(
    () => ({
      system: pinned ? null : settings.system,
      temperature: settings.temperature,
      max_tokens: settings.max_tokens,
    }),
    [pinned, settings.system, settings.temperature, settings.max_tokens],
  );

  return {
    /** The model in effect: the conversation's when the server still offers it, else the default. */
    model,
    chooseModel,
    /** The generation settings every prompt frame carries (null and '' are left out of the frame). */
    frame,
    pinned,
    loaded,
    panel: {
      open,
      toggle,
      close,
      form,
      change,
      submit,
      saving,
      error,
      dismissError: () => setError(null),
      buttonRef,
      newChat: conversation === null,
    },
  };
}
