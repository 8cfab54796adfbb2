import { useCallback, useState } from 'react';

/**
 * Open or closed, for a section that opens and closes by itself (`autoOpen`) until the person toggles it: from then
 * on their choice holds, whatever `autoOpen` says later.
 *
 * @param {boolean} [autoOpen] whether the section is open while the person has not chosen
 * @returns {[boolean, () => void]} whether it is open now, and the toggle for its button
 */
export function useDisclosure(autoOpen = false) {
  const [chosen, setChosen] = useState(/** @type {boolean|null} */ (null));
  const open = chosen ?? autoOpen;
  const toggle = useCallback(() => setChosen(!open), [open]);
  return [open, toggle];
}
