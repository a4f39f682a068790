/**
 * The frames written from templates (once per connection, once per subscribe) are byte for byte what the generic encoder
 * writes, for every socket id, activity timeout and channel name, and what a client decodes from them is what it asked.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Events } from '../../src/protocol/events.js';
import { encodeConnectionEstablished, encodeProtocol, encodeSubscriptionSucceeded } from '../../src/protocol/encode.js';

const generic = (socketId: string, timeout: number): string =>
  encodeProtocol(Events.ConnectionEstablished, { socket_id: socketId, activity_timeout: timeout });

test('connection_established from its template is the generic encoding, for every socket id and timeout', () => {
  const socketIds = fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => `${a}.${b}`);
  fc.assert(
    fc.property(socketIds, fc.integer({ min: 0, max: 1_000_000 }), (id, timeout) => {
      const frame = encodeConnectionEstablished(id, timeout);
      assert.equal(frame, generic(id, timeout));
      const decoded = JSON.parse(frame) as { event: string; data: string };
      assert.deepEqual(JSON.parse(decoded.data), { socket_id: id, activity_timeout: timeout });
    }),
  );
});

test('connection_established of anything but a socket id and a whole timeout is encoded, not templated', () => {
  for (const [id, timeout] of [
    ['1"2.3', 120],
    ['1\\.2', 120],
    ['12', 120],
    ['1.2', 1.5],
    ['1.2', Number.NaN],
  ] as const) {
    assert.equal(encodeConnectionEstablished(id, timeout), generic(id, timeout), `${id} ${timeout}`);
  }
});

test('subscription_succeeded from its template is the generic encoding, for every channel name', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), (channel) => {
      assert.equal(encodeSubscriptionSucceeded(channel), encodeProtocol(Events.SubscriptionSucceeded, {}, channel));
    }),
  );
  assert.equal(
    encodeSubscriptionSucceeded('presence-"quoted"\\'),
    encodeProtocol(Events.SubscriptionSucceeded, {}, 'presence-"quoted"\\'),
  );
});
