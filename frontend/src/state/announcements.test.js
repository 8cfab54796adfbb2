import { describe, expect, it } from 'vitest';
import { newExchange } from './chatReducer.js';
import { announcementFor, connectionAnnouncement } from './announcements.js';

const exchange = (status, fields = {}) => newExchange({ key: 'k', stream: 's', status, ...fields });

describe('announcementFor', () => {
  it('says when an answer finishes, once', () => {
    expect(announcementFor([exchange('streaming')], [exchange('completed')])).toBe('Answer finished.');
    expect(announcementFor([exchange('completed')], [exchange('completed')])).toBeNull();
  });

  it('says nothing about deltas', () => {
    expect(
      announcementFor([exchange('streaming', { answer: 'a' })], [exchange('streaming', { answer: 'ab' })]),
    ).toBeNull();
  });

  it('reports stops and failures', () => {
    expect(announcementFor([exchange('streaming')], [exchange('cancelled')])).toBe('Answer stopped.');
    const failed = exchange('failed', { error: { code: 'x', message: 'Rate limited.', retryable: true } });
    expect(announcementFor([exchange('streaming')], [failed])).toBe('The answer failed: Rate limited.');
  });

  it('does not announce a whole conversation being opened', () => {
    expect(announcementFor([], [exchange('completed')])).toBeNull();
  });
});

describe('connectionAnnouncement', () => {
  it('reports a drop and the way back', () => {
    expect(connectionAnnouncement('connected', 'reconnecting')).toMatch(/lost/);
    expect(connectionAnnouncement('reconnecting', 'connected')).toMatch(/again/);
    expect(connectionAnnouncement('connecting', 'connected')).toBeNull();
  });
});
