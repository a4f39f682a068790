/**
 * abortAfter (src/lifecycle/abort-after.ts): a request's time bound that a garbage collection cannot take away, as it could
 * `AbortSignal.any([parent, AbortSignal.timeout(ms)])`'s on Node 20 (the webhook sender's and the Loki push's bound before).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { abortAfter } from '../../src/lifecycle/abort-after.js';
import { gc } from '../helpers/gc.js';
import { within } from '../helpers/wait.js';

/** The reason `signal` aborts with, or 'pending' if it has not within `ms`. */
async function reasonWithin(signal: AbortSignal, ms: number): Promise<unknown> {
  if (signal.aborted) return signal.reason as unknown;
  // This timer holds the test's event loop open: abortAfter's own does not (a request in flight would).
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('pending'), ms);
  });
  try {
    return await Promise.race([once(signal, 'abort').then(() => signal.reason as unknown), pending]);
  } finally {
    clearTimeout(timer);
  }
}

test('aborts after its time with a TimeoutError, as AbortSignal.timeout does, even after a full GC', async () => {
  const parent = new AbortController();
  // Only the bounded signal is held, by the listener `reasonWithin` adds, as a request holds it.
  const { signal } = abortAfter(50, parent.signal);
  gc();
  const reason = await reasonWithin(signal, 2000);
  assert.ok(reason instanceof DOMException, `aborted with ${String(reason)}`);
  assert.equal(reason.name, 'TimeoutError');
  assert.equal(reason.message, 'The operation was aborted due to timeout');
});

test("aborts with the parent's reason when the parent aborts first", async () => {
  const parent = new AbortController();
  const { signal } = abortAfter(60_000, parent.signal);
  const why = new Error('shutting down');
  parent.abort(why);
  assert.equal(await within(reasonWithin(signal, 2000), 'abort'), why);
});

test('a parent already aborted aborts it at once', () => {
  const parent = new AbortController();
  parent.abort(new Error('gone'));
  const { signal } = abortAfter(60_000, parent.signal);
  assert.equal(signal.aborted, true);
  assert.equal((signal.reason as Error).message, 'gone');
});

test('after clear() neither the timer nor the parent aborts it, and the parent keeps no listener of it', async () => {
  const parent = new AbortController();
  let listeners = 0;
  const add = parent.signal.addEventListener.bind(parent.signal);
  const remove = parent.signal.removeEventListener.bind(parent.signal);
  parent.signal.addEventListener = (...args: Parameters<AbortSignal['addEventListener']>) => {
    listeners++;
    add(...args);
  };
  parent.signal.removeEventListener = (...args: Parameters<AbortSignal['removeEventListener']>) => {
    listeners--;
    remove(...args);
  };
  const bound = abortAfter(30, parent.signal);
  assert.equal(listeners, 1);
  bound.clear();
  assert.equal(listeners, 0);
  assert.equal(await reasonWithin(bound.signal, 200), 'pending');
  parent.abort();
  assert.equal(bound.signal.aborted, false);
});
