import { describe, expect, it } from 'vitest';
import { socketUrl } from './socketUrl.js';

describe('socketUrl', () => {
  it('uses ws: for http pages and wss: for https pages, on the same host', () => {
    expect(socketUrl('/ws/chat/', { protocol: 'http:', host: 'localhost:8000' })).toBe('ws://localhost:8000/ws/chat/');
    expect(socketUrl('/ws/chat/', { protocol: 'https:', host: 'chat.example' })).toBe('wss://chat.example/ws/chat/');
  });

  it('adds a missing leading slash', () => {
    expect(socketUrl('ws/chat/', { protocol: 'http:', host: 'h' })).toBe('ws://h/ws/chat/');
  });
});
