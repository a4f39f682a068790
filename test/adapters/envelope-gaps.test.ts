/** Loss detection of the Redis engine (src/adapters/envelope-gaps.ts): numbers per channel on the publisher, gaps on the receiver. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GapCounter, Numbering, RECEIVER_GENERATIONS } from '../../src/adapters/envelope-gaps.js';

test('numbering: per channel from 1, one run per channel; a channel untouched for a whole generation starts a new run', () => {
  const numbering = new Numbering('a:1');
  assert.deepEqual(numbering.next('x'), { node: 'a:1', run: 1, n: 1 });
  assert.deepEqual(numbering.next('x'), { node: 'a:1', run: 1, n: 2 });
  assert.deepEqual(numbering.next('y'), { node: 'a:1', run: 2, n: 1 });
  numbering.rotate();
  // Touched in the generation before: kept.
  assert.deepEqual(numbering.next('x'), { node: 'a:1', run: 1, n: 3 });
  numbering.rotate();
  numbering.rotate();
  // Untouched since: a new run, never a number going back within a run.
  assert.deepEqual(numbering.next('x'), { node: 'a:1', run: 3, n: 1 });
});

test('gaps: the first envelope sets the baseline; skipped numbers are counted once; repeats and late ones count nothing', () => {
  const gaps = new GapCounter();
  const at = (node: string, run: number, n: number) => gaps.received('x', { node, run, n });
  assert.equal(at('a', 1, 5), 0, 'subscribed mid-run: no loss');
  assert.equal(at('a', 1, 6), 0);
  assert.equal(at('a', 1, 9), 2, '7 and 8 missed');
  assert.equal(at('a', 1, 9), 0, 'a repeat');
  assert.equal(at('a', 1, 8), 0, 'a late one');
  assert.equal(at('a', 1, 10), 0);
  assert.equal(at('b', 4, 1), 0, 'each publisher its own numbers');
  assert.equal(at('b', 4, 3), 1);
  assert.equal(at('a', 2, 7), 0, 'a new run of the publisher: a new baseline');
  assert.equal(at('a', 2, 8), 0);
});

test('gaps: a gap says the era the envelope before it was received in (a gap across a resubscription is its to read again)', () => {
  const gaps = new GapCounter();
  assert.equal(gaps.received('x', { node: 'a', run: 1, n: 1 }, 0), 0);
  assert.equal(gaps.received('x', { node: 'a', run: 1, n: 3 }, 1), 1);
  assert.equal(gaps.previousEra, 0, 'across the resubscription');
  assert.equal(gaps.received('x', { node: 'a', run: 1, n: 5 }, 1), 1);
  assert.equal(gaps.previousEra, 1, 'within it');
});

test('gaps: a channel forgotten (no longer listened to) or untouched for a whole receiver generation starts again from a baseline', () => {
  const gaps = new GapCounter();
  gaps.received('x', { node: 'a', run: 1, n: 1 });
  gaps.forget('x');
  assert.equal(gaps.received('x', { node: 'a', run: 1, n: 50 }), 0, 'not listened to meanwhile: not lost');
  // A subscriber away ten minutes (rotations come every GENERATION_MS) while the publisher went on: all it missed counted.
  // Before, the entry was dropped after two minutes untouched and the 150 envelopes missed were no gap.
  for (let i = 0; i < RECEIVER_GENERATIONS; i++) gaps.rotate();
  assert.equal(gaps.received('x', { node: 'a', run: 1, n: 201 }), 150, 'kept across a receiver generation');
  for (let i = 0; i < 2 * RECEIVER_GENERATIONS; i++) gaps.rotate();
  assert.equal(gaps.received('x', { node: 'a', run: 1, n: 260 }), 0, 'dropped after a whole receiver generation untouched');
});

test('numbering: a run that reached nobody is dropped unless a later envelope was numbered; one that reached a node is kept', () => {
  const numbering = new Numbering('a:1');
  const first = numbering.next('x');
  numbering.answered('x', first, 0);
  assert.equal(numbering.size, 0);
  assert.deepEqual(numbering.next('x'), { node: 'a:1', run: 2, n: 1 }, 'a new run: a receiver takes it as its baseline');
  const older = numbering.next('x');
  numbering.next('x');
  numbering.answered('x', older, 0);
  assert.equal(numbering.size, 1, 'a later envelope was numbered: it may have reached a new subscriber');
  const heard = numbering.next('x');
  numbering.answered('x', heard, 1);
  const missed = numbering.next('x');
  numbering.answered('x', missed, 0);
  assert.deepEqual(numbering.next('x'), { node: 'a:1', run: 2, n: 6 }, 'heard once: a publish reaching nobody now is a gap to count');
  numbering.rotate();
  const old = numbering.next('y');
  numbering.next('x');
  numbering.rotate();
  numbering.answered('y', old, 0);
  assert.equal(numbering.size, 1, 'y dropped from the older generation, x kept');
});
