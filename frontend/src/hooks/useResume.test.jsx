import { describe, expect, it } from 'vitest';
import { newExchange } from '../state/chatReducer.js';
import { renderHook } from '../test/render.jsx';
import { useResume } from './useResume.js';

const ready = { type: 'ready', protocol: 1 };
const running = (fields = {}) =>
  newExchange({ key: 's-1', stream: 's-1', status: 'streaming', lastSeq: 3, needsResume: true, ...fields });

function mount(props) {
  const sent = [];
  const dispatched = [];
  const base = {
    send: (frame) => {
      sent.push(frame);
      return true;
    },
    dispatch: (action) => dispatched.push(action),
  };
  const hook = renderHook(useResume, { ...base, ...props });
  return { sent, dispatched, rerender: (next) => hook.rerender({ ...base, ...props, ...next }), hook };
}

describe('useResume', () => {
  it('waits for the connection to be ready, then resumes each stream that needs it from its last seq', () => {
    const exchanges = [
      running(),
      running({ key: 's-2', stream: 's-2', lastSeq: 0 }),
      running({ key: 's-3', stream: 's-3', needsResume: false }),
    ];
    const view = mount({ ready: null, exchanges });
    expect(view.sent).toEqual([]);
    view.rerender({ ready });
    expect(view.sent).toEqual([
      { type: 'resume', stream: 's-1', after: 3 },
      { type: 'resume', stream: 's-2', after: 0 },
    ]);
    expect(view.dispatched).toEqual([
      { type: 'resumeSent', stream: 's-1', after: 3 },
      { type: 'resumeSent', stream: 's-2', after: 0 },
    ]);
    view.hook.unmount();
  });

  it('does not send the same exchange twice on one connection, even if it renders again before resumeSent', () => {
    const exchanges = [running()];
    const view = mount({ ready, exchanges });
    view.rerender({ exchanges: [...exchanges] });
    expect(view.sent).toHaveLength(1);
    // A new connection is a new `ready`: what it needs goes out again.
    view.rerender({ ready: { ...ready }, exchanges: [...exchanges] });
    expect(view.sent).toHaveLength(2);
    view.hook.unmount();
  });

  it('sends the last pos along with after to a protocol-2 server, and reports both', () => {
    const exchanges = [running({ lastPos: 7 }), running({ key: 's-2', stream: 's-2', lastSeq: 2, lastPos: null })];
    const view = mount({ ready: { ...ready, protocol: 2 }, exchanges });
    expect(view.sent).toEqual([
      { type: 'resume', stream: 's-1', after: 3, pos: 7 },
      // Its place in the record is not known (what an older page kept): by seq alone.
      { type: 'resume', stream: 's-2', after: 2 },
    ]);
    expect(view.dispatched).toEqual([
      { type: 'resumeSent', stream: 's-1', after: 3, pos: 7 },
      { type: 'resumeSent', stream: 's-2', after: 2 },
    ]);
    view.hook.unmount();
  });

  it('sends no pos to a protocol-1 server, which has none to go by', () => {
    const view = mount({ ready, exchanges: [running({ lastPos: 0 })] });
    expect(view.sent).toEqual([{ type: 'resume', stream: 's-1', after: 3 }]);
    view.hook.unmount();
  });

  it('records nothing when the frame could not be sent', () => {
    const view = mount({ ready, exchanges: [running()], send: () => false });
    expect(view.dispatched).toEqual([]);
    view.hook.unmount();
  });
});
