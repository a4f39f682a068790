/** The Loki spool (src/telemetry/loki-spool.ts): order kept through failed pushes, bounded in bytes, oldest dropped first. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LokiSpool } from '../../src/telemetry/loki-spool.js';
import { backoffMs, RETRY_BASE_MS, RETRY_MAX_MS } from '../../src/telemetry/loki-shipper.js';

const line = (n: number): string => `line-${String(n).padStart(4, '0')}`; // 9 bytes each

test('batches come from the head in order; a failed batch goes back to the head', () => {
  const spool = new LokiSpool(1000);
  for (let n = 0; n < 10; n++) spool.add(line(n));
  const first = spool.take(30, 100);
  assert.deepEqual(first.lines, [line(0), line(1), line(2)]);
  assert.equal(spool.size, 7);
  spool.add(line(10));
  assert.equal(spool.putBack(first), 0);
  assert.deepEqual(spool.take(1000, 100).lines, Array.from({ length: 11 }, (_, n) => line(n)));
  assert.equal(spool.bytes, 0);
});

test('past its bound in bytes the oldest lines are dropped, and counted', () => {
  const spool = new LokiSpool(45); // five lines
  let dropped = 0;
  for (let n = 0; n < 8; n++) dropped += spool.add(line(n));
  assert.equal(dropped, 3);
  assert.equal(spool.bytes, 45);
  const batch = spool.take(18, 100);
  assert.deepEqual(batch.lines, [line(3), line(4)]);
  spool.add(line(8));
  spool.add(line(9));
  // Putting the failed batch back overflows: the oldest (the batch's own first line) goes.
  assert.equal(spool.putBack(batch), 2);
  assert.deepEqual(spool.take(1000, 100).lines, [line(5), line(6), line(7), line(8), line(9)]);
});

test('a batch takes at least one line, whatever its size, and at most maxLines', () => {
  const spool = new LokiSpool(10_000);
  spool.add('x'.repeat(500));
  spool.add('y');
  assert.equal(spool.take(10, 100).lines.length, 1);
  for (let n = 0; n < 5; n++) spool.add(line(n));
  assert.equal(spool.take(10_000, 3).lines.length, 3);
});

test('back-off doubles from the base to the ceiling, jittered to [d/2, d]', () => {
  assert.equal(backoffMs(1, () => 1), RETRY_BASE_MS);
  assert.equal(backoffMs(1, () => 0), RETRY_BASE_MS / 2);
  assert.equal(backoffMs(3, () => 1), RETRY_BASE_MS * 4);
  assert.equal(backoffMs(30, () => 1), RETRY_MAX_MS);
  assert.equal(backoffMs(30, () => 0), RETRY_MAX_MS / 2);
});
