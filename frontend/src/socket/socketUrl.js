/**
 * The WebSocket address for a path on this page's own host: wss:// when the page came over https, so that the
 * browser does not block a mixed-content socket.
 * @param {string} path e.g. "/ws/chat/"
 * @param {{protocol: string, host: string}} location usually `window.location`
 * @returns {string}
 */
export function socketUrl(path, location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path.startsWith('/') ? path : `/${path}`}`;
}
