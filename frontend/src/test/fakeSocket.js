/**
 * A stand-in for the browser's WebSocket, for tests: it records what the app sends and lets the test play the
 * server (open, frames, close).
 */
export class FakeSocket {
  /** @type {FakeSocket[]} every socket made since the last reset, newest last */
  static made = [];

  static reset() {
    FakeSocket.made = [];
  }

  /** Pass as `createSocket`. */
  static create = (url) => {
    const socket = new FakeSocket(url);
    FakeSocket.made.push(socket);
    return socket;
  };

  static latest() {
    return FakeSocket.made[FakeSocket.made.length - 1];
  }

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** @type {any[]} frames the app sent, parsed */
    this.sent = [];
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    this.onerror = null;
  }

  send(data) {
    this.sent.push(JSON.parse(data));
  }

  close() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.();
  }

  // ---- the server's side ----

  open() {
    this.readyState = 1;
    this.onopen?.();
  }

  receive(frame) {
    this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }

  /** The connection drops (the server went away), or the server closes it with `code`. */
  drop(code = 1006) {
    this.readyState = 3;
    if (code === 1006) this.onerror?.();
    this.onclose?.({ code });
  }
}

/** A `ready` frame with the protocol's example values. */
export function readyFrame(overrides = {}) {
  return {
    type: 'ready',
    protocol: 1,
    model: 'demo',
    models: ['demo'],
    demo: true,
    limits: { max_prompt_chars: 32000, max_tokens: 4096, max_streams: 3, max_frame_bytes: 262144 },
    ...overrides,
  };
}
