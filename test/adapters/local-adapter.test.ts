import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLocalAdapter } from '../../src/adapters/local-adapter.js';
import { BIG_CHANNEL, COUNT_INTERVAL_MS } from '../../src/adapters/membership-events.js';
import { createEventCache } from '../../src/realtime/event-cache.js';
import { gc } from '../helpers/gc.js';
import { until } from '../helpers/wait.js';
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

test('the event cache charges a small event about what it costs the heap, so CACHE_MAX_BYTES bounds the heap', () => {
  // A probe: tiny events took twice the heap they were charged (264 against 132 bytes each), so the bound held ~2x its setting.
  for (const [channel, data] of [['cache-many-', '{"v":12}'], ['private-cache-orders-user-', '{"price":101.25,"at":1765000000000}']] as const) {
    const cache = createEventCache({ maxBytes: 1 << 30, ttlMs: 60_000, onEvicted: () => undefined });
    const n = 20_000;
    gc();
    gc();
    const before = process.memoryUsage().heapUsed;
    // Each event's data its own string, as each publish's is.
    for (let i = 0; i < n; i++) cache.set('app-id', `${channel}${100_000 + i}`, { event: 'state', data: data.replace('1', String(i % 10)) });
    gc();
    gc();
    const heap = (process.memoryUsage().heapUsed - before) / n;
    const charged = cache.bytes() / n;
    assert.ok(charged >= 0.85 * heap && charged <= 1.25 * heap, `${channel}: ${charged.toFixed(0)} bytes charged, ${heap.toFixed(0)} of heap per event`);
  }
});

test('local adapter: a wall clock set back does not hold a big channel\'s counts: the trailing count goes out within the interval', { timeout: 15_000 }, async () => {
  // A review: the throttle of big channels ran on the wall clock, and one set back an hour held their counts that hour.
  const adapter = createLocalAdapter({ metrics: noMetrics, cacheTtlMs: 1000, cacheMaxBytes: 1 << 20, countsSubscriptions: () => true });
  const counts: number[] = [];
  adapter.onEnvelope((e) => {
    if (e.event === 'pusher_internal:subscription_count') counts.push((JSON.parse(e.data) as { subscription_count: number }).subscription_count);
  });
  const wallNow = Date.now;
  try {
    for (let i = 0; i <= BIG_CHANNEL; i++) await adapter.join('app', 'big', `1.${i}`, null, 0);
    // Past BIG_CHANNEL the count just went out and the next waits for the interval.
    const sent = counts.length;
    Date.now = () => wallNow() - 3_600_000;
    await adapter.join('app', 'big', '2.0', null, 0);
    await until(() => counts.length > sent, 'the trailing count', COUNT_INTERVAL_MS + 3000);
    assert.equal(counts.at(-1), BIG_CHANNEL + 2);
  } finally {
    Date.now = wallNow;
    await adapter.close();
  }
});
