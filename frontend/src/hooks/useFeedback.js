import { useCallback } from 'react';
import { saveFeedback } from '../api.js';

/**
 * Sending the person's feedback on an answer: it is saved through the API, and what the server kept goes to the
 * reducer (`feedbackSaved`), which shows it. Nothing changes when saving fails.
 *
 * @param {{feedbackUrl: string, csrfToken: string, dispatch: (action: object) => void, save?: typeof saveFeedback}}
 *   options `save` stands in for the API in tests
 * @returns {(stream: string, feedback: {rating: 'up'|'down'|null, comment?: string}) =>
 *   Promise<import('../state/types.js').Feedback|null>} resolves with the feedback kept, rejects when it was not
 */
export function useFeedback({ feedbackUrl, csrfToken, dispatch, save = saveFeedback }) {
  return useCallback(
    async (stream, feedback) => {
      const kept = await save(feedbackUrl, stream, feedback, { csrfToken });
      dispatch({ type: 'feedbackSaved', stream, feedback: kept });
      return kept;
    },
    [feedbackUrl, csrfToken, dispatch, save],
  );
}
