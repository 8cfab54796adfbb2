import { ChevronLeftIcon, ChevronRightIcon } from './icons.jsx';

/**
 * The "2 / 3" switch between the versions of a turn (its regenerated answers and edited questions). Shown only when
 * there is more than one.
 * @param {{version: number, versions: import('../state/types.js').Exchange[],
 *   onShow: (exchange: import('../state/types.js').Exchange) => void}} props version counts from 1
 */
export function VersionSwitch({ version, versions, onShow }) {
  if (versions.length < 2) return null;
  const show = (/** @type {number} */ place) => onShow(versions[place - 1]);
  return (
    <div className="version-switch" role="group" aria-label="Versions" data-testid="version-switch">
      <button
        type="button"
        className="button small ghost"
        aria-label="Previous version"
        title="Previous version"
        disabled={version <= 1}
        onClick={() => show(version - 1)}
      >
        <ChevronLeftIcon />
      </button>
      <span className="version-count" data-testid="version-count" aria-live="polite">
        <span aria-hidden="true">
          {version} / {versions.length}
        </span>
        <span className="sr-only">
          Version {version} of {versions.length}
        </span>
      </span>
      <button
        type="button"
        className="button small ghost"
        aria-label="Next version"
        title="Next version"
        disabled={version >= versions.length}
        onClick={() => show(version + 1)}
      >
        <ChevronRightIcon />
      </button>
    </div>
  );
}
