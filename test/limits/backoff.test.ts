/** The shared retry back-off (src/limits/backoff.ts): exponential, capped, each delay drawn from the upper half. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jitteredBackoffMs } from '../../src/limits/backoff.js';

test('retry n waits within [ceiling/2, ceiling], ceiling = min(max, base · 2^(n-1))', () => {
  const base = 1000;
  const max = 60_000;
  for (let attempt = 1; attempt <= 12; attempt++) {
    const ceiling = Math.min(max, base * 2 ** (attempt - 1));
    assert.equal(jitteredBackoffMs(attempt, base, max, () => 0), ceiling / 2, `attempt ${attempt}, lowest`);
    assert.ok(jitteredBackoffMs(attempt, base, max, () => 1 - Number.EPSILON) <= ceiling, `attempt ${attempt}, highest`);
    for (let i = 0; i < 50; i++) {
      const d = jitteredBackoffMs(attempt, base, max);
      assert.ok(d >= ceiling / 2 && d <= ceiling, `attempt ${attempt}: ${d}`);
    }
  }
});

test('the jitter spreads retries: 100 senders failing together do not retry at one instant', () => {
  const delays = new Set(Array.from({ length: 100 }, () => Math.round(jitteredBackoffMs(3, 1000, 60_000))));
  assert.ok(delays.size > 50, `${delays.size} distinct delays`);
});
