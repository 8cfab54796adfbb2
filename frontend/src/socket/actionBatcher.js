import { useRef } from 'react';

/**
 * Collects reducer actions and dispatches them together, once per animation frame.
 *
 * A fast model sends hundreds of deltas a second; rendering after each one would re-render (and re-parse markdown)
 * far more often than the screen can show. Batching keeps their order and costs at most one frame of latency.
 * A hidden tab gets no animation frames, so there a short timer is used instead to keep state current.
 *
 * @param {(action: {type: 'batch', actions: object[]}) => void} dispatch
 * @param {(flush: () => void) => void} [schedule]
 */
export function createActionBatcher(dispatch, schedule = scheduleNextFrame) {
  /** @type {object[]} */
  let queue = [];
  let scheduled = false;

  function flush() {
    scheduled = false;
    const actions = queue;
    queue = [];
    if (actions.length > 0) dispatch({ type: 'batch', actions });
  }

  return {
    /** Queues an action for the next flush. */
    push(action) {
      queue.push(action);
      if (!scheduled) {
        scheduled = true;
        schedule(flush);
      }
    },
    flush,
  };
}

function scheduleNextFrame(callback) {
  const visible = typeof document === 'undefined' || !document.hidden;
  if (visible && typeof requestAnimationFrame === 'function') requestAnimationFrame(callback);
  else setTimeout(callback, 50);
}

/**
 * One batcher for the component's lifetime.
 * @param {(action: object) => void} dispatch a stable dispatch, like the one from useReducer
 * @returns {{push: (action: object) => void, flush: () => void}}
 */
export function useActionBatcher(dispatch) {
  const batcher = useRef(/** @type {ReturnType<typeof createActionBatcher>|null} */ (null));
  if (batcher.current === null) batcher.current = createActionBatcher(dispatch);
  return batcher.current;
}
