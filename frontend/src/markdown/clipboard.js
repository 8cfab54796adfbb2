/**
 * Copies text to the clipboard. The async Clipboard API only exists on https pages and localhost, so on a plain-http
 * deployment this falls back to a hidden textarea and the older copy command.
 * @param {string} text
 * @returns {Promise<boolean>} whether the copy worked
 */
export async function copyText(text) {
  if (navigator.clipboard?.writeText && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through to the older way, e.g. when the page lost focus
    }
  }
  return copyWithTextarea(text);
}

function copyWithTextarea(text) {
  const textarea = document.createElement('textarea');
  textarea.value = text;
  textarea.setAttribute('readonly', '');
  textarea.style.position = 'fixed';
  textarea.style.opacity = '0';
  document.body.append(textarea);
  textarea.select();
  try {
    return document.execCommand('copy');
  } catch {
    return false;
  } finally {
    textarea.remove();
  }
}
