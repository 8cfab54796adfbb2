import { useEffect, useRef, useState } from 'react';
import { announcementFor, connectionAnnouncement } from '../state/announcements.js';

/**
 * The sentence for the screen-reader status region: answers starting, finishing or failing, and the connection
 * dropping and coming back. Deltas are never announced.
 * @param {import('../state/types.js').Exchange[]} exchanges
 * @param {string} connectionStatus
 * @returns {string}
 */
export function useAnnouncement(exchanges, connectionStatus) {
  const [announcement, setAnnouncement] = useState('');
  const previousExchanges = useRef(exchanges);
  const previousStatus = useRef(connectionStatus);
  useEffect(() => {
    const sentence = announcementFor(previousExchanges.current, exchanges);
    previousExchanges.current = exchanges;
    if (sentence) setAnnouncement(sentence);
  }, [exchanges]);
  useEffect(() => {
    const sentence = connectionAnnouncement(previousStatus.current, connectionStatus);
    previousStatus.current = connectionStatus;
    if (sentence) setAnnouncement(sentence);
  }, [connectionStatus]);
  return announcement;
}
