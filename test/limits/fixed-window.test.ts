/** The fixed one-second window every rate limit counts in (src/limits/fixed-window.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FixedWindow } from '../../src/limits/fixed-window.js';

test('the first window opens at the first event, whatever the clock reads then', () => {
  // On performance.now() the process's first second read 0–1000: a window starting at 0 ended at 1000, mid-burst.
  const window = new FixedWindow(5);
  const admitted = [600, 700, 800, 900, 950, 1001, 1100, 1200].map((now) => window.allow(now));
  assert.deepEqual(admitted, [true, true, true, true, true, false, false, false]);
  assert.equal(window.within(1200), false);
  assert.equal(window.resetsIn(1200), 400);
  // A second after the first event, a new window.
  assert.equal(window.allow(1600), true);
});

test('a clock read before the window began (another clock, or a step back) opens a new window', () => {
  const window = new FixedWindow(2);
  assert.deepEqual([5000, 5001, 5002].map((now) => window.allow(now)), [true, true, false]);
  assert.equal(window.allow(1000), true);
  assert.ok(window.resetsIn(1000) <= 1000);
});
