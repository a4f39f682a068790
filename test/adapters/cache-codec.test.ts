/** The stored form of a cache channel's last event (src/adapters/cache-codec.ts): round trip, older values, garbage. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCachedEvent, encodeCachedEvent } from '../../src/adapters/cache-codec.js';

test('a cached event round-trips with its expiry', () => {
  const plain = { event: 'ev', data: 'x' };
  assert.deepEqual(decodeCachedEvent(encodeCachedEvent(plain, 5)), { event: plain, expiresAt: 5 });
  assert.deepEqual(JSON.parse(encodeCachedEvent(plain, 5)), { event: 'ev', data: 'x', expiresAt: 5 });
});

test('a value an older Beacon wrote still reads (a cached client event\'s userId left out); anything else is no event', () => {
  assert.deepEqual(decodeCachedEvent('{"event":"e","data":"d","expiresAt":9}'), { event: { event: 'e', data: 'd' }, expiresAt: 9 });
  assert.deepEqual(decodeCachedEvent('{"event":"client-t","data":"d","userId":"u1","expiresAt":9}'), {
    event: { event: 'client-t', data: 'd' },
    expiresAt: 9,
  });
  for (const raw of ['not json', 'null', '[]', '{"event":"e","expiresAt":9}', '{"event":"e","data":"d"}']) {
    assert.equal(decodeCachedEvent(raw), undefined, raw);
  }
});
