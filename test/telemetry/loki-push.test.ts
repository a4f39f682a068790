/**
 * One push to Loki (src/telemetry/loki-push.ts) is bounded in time: against a Loki that takes the request and never
 * answers, the push gives up after its timeout as a retry, even when a garbage collection ran meanwhile (its bound used
 * to be AbortSignal.any over AbortSignal.timeout, whose timer a GC could take away on Node 20: the push then waited
 * forever and the worker shipped nothing more).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pushHeaders, pushLines } from '../../src/telemetry/loki-push.js';
import { gc } from '../helpers/gc.js';
import { startLokiReceiver } from '../helpers/loki-receiver.js';
import { within } from '../helpers/wait.js';

test('a push Loki never answers gives up after its timeout, as a retry, even after a GC', async () => {
  const loki = await startLokiReceiver('hang');
  try {
    const target = { url: loki.url, serviceName: 'beacon-test', env: 'ci', nodeId: 'n1', username: undefined, password: undefined, tenantId: undefined };
    // Long enough for the request to reach the receiver before the bound on a loaded machine (at 100 ms the push could
    // give up first, and the wait for its arrival below then failed), so the GC runs while the push waits.
    const push = pushLines(target, pushHeaders(target), ['{"level":"info","msg":"x"}'], 1500, new AbortController().signal);
    await loki.waitFor(() => loki.pushes.length === 1);
    gc();
    assert.deepEqual(await within(push, 'the push to give up'), { result: 'retry', status: 'TimeoutError' });
  } finally {
    await loki.close();
  }
});
