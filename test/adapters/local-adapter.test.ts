import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLocalAdapter } from '../../src/adapters/local-adapter.js';
import { createEventCache } from '../../src/realtime/event-cache.js';
import { adapterContract } from './adapter-contract.js';

const noMetrics = { adapterMessage: () => undefined, adapterRequest: () => undefined };

adapterContract('local adapter', (clock, cacheTtlMs, countsSubscriptions) =>
  createLocalAdapter({ metrics: noMetrics, cacheTtlMs, cacheMaxBytes: 1 << 20, now: clock.now, countsSubscriptions }),
);

test('local adapter: counts each publish as published and received, and times its queries', async () => {
  const recorded: string[] = [];
  const adapter = createLocalAdapter({
    metrics: { adapterMessage: (d) => recorded.push(d), adapterRequest: (op) => recorded.push(op) },
    cacheTtlMs: 1000,
    cacheMaxBytes: 1 << 20,
  });
  adapter.publish({
    appId: 'x',
    channel: 'c',
    event: 'e',
    data: '',
    userId: undefined,
    excludeSocketId: undefined,
    kind: 'channel_event',
    trace: undefined,
    publishedAt: 0,
  });
  await adapter.channels('x');
  await adapter.channel('x', 'c');
  await adapter.members('x', 'c');
  assert.deepEqual(recorded, ['published', 'received', 'channels', 'counts', 'members']);
});

test('local adapter: the cache is bounded in bytes, evicts the least recently used channel first, and counts it', async () => {
  const evicted: string[] = [];
  const adapter = createLocalAdapter({
    metrics: noMetrics,
    cacheTtlMs: 60_000,
    cacheMaxBytes: 100_000,
    onCacheEvicted: (appId) => evicted.push(appId),
  });
  const data = 'x'.repeat(10_000);
  for (let i = 0; i < 5; i++) adapter.cacheSet('app', `cache-${i}`, { event: 'e', data });
  // Reading cache-0 makes it the most recently used: cache-1 goes first when room is needed.
  assert.ok(await adapter.cacheGet('app', 'cache-0'));
  for (let i = 5; i < 50; i++) adapter.cacheSet('app', `cache-${i}`, { event: 'e', data });
  let kept = 0;
  for (let i = 0; i < 50; i++) if ((await adapter.cacheGet('app', `cache-${i}`)) !== undefined) kept++;
  assert.ok(kept <= 10 && kept >= 8, `${kept} of 50 ten-kilobyte events fit in 100 000 bytes`);
  assert.equal(evicted.length, 50 - kept);
  assert.ok(evicted.every((a) => a === 'app'));
  assert.equal(await adapter.cacheGet('app', 'cache-1'), undefined, 'the least recently used went first');
  assert.ok(await adapter.cacheGet('app', 'cache-49'), 'the newest is kept');
  // An event larger than the whole bound is not kept (the channel misses) and evicts nothing.
  adapter.cacheSet('app', 'cache-huge', { event: 'e', data: 'y'.repeat(200_000) });
  assert.equal(await adapter.cacheGet('app', 'cache-huge'), undefined);
  assert.ok(await adapter.cacheGet('app', 'cache-49'));
});

test('the event cache drops expired events as new ones come: a churn of new cache channels holds what its last TTL set', () => {
  // A probe: 25 000 tiny events to new channels a round grew the heap by 6 MB a round, expired or not, until the bound.
  let clock = 0;
  const cache = createEventCache({ maxBytes: 1 << 30, ttlMs: 1000, onEvicted: () => assert.fail('nothing is evicted for room'), now: () => clock });
  const round = (r: number): void => {
    for (let i = 0; i < 5000; i++) cache.set('app', `cache-${r}-${i}`, { event: 'state', data: '{"v":1}' });
  };
  round(0);
  const oneRound = cache.bytes();
  for (let r = 1; r <= 4; r++) {
    clock += 1500;
    round(r);
    // The round before expired: each set dropped up to two of its events.
    assert.equal(cache.bytes(), oneRound, `round ${r}`);
  }
  // A read of an event not expired still finds it, and an expired one misses.
  assert.deepEqual(cache.get('app', 'cache-4-0'), { event: 'state', data: '{"v":1}' });
  clock += 1500;
  assert.equal(cache.get('app', 'cache-4-1'), undefined);
});

test('the event cache charges a tiny event what it costs the heap, so CACHE_MAX_BYTES bounds the heap', () => {
  // 200 000 such events took 264 bytes of heap each (a full GC before and after); 132 were charged before.
  const cache = createEventCache({ maxBytes: 1 << 30, ttlMs: 60_000, onEvicted: () => undefined });
  for (let i = 0; i < 1000; i++) cache.set('app-id', `cache-many-${100_000 + i}`, { event: 'state', data: '{"v":12}' });
  const charged = cache.bytes() / 1000;
  assert.ok(charged >= 250 && charged <= 300, `${charged} bytes charged per event`);
});
