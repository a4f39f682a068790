/**
 * The drain sequence (src/lifecycle/drain.ts) under one deadline (src/lifecycle/deadline.ts): the stages run in the order
 * that loses nothing — the API stops accepting, the adapter is flushed, and only then are connections closed — and a stage
 * that hangs is cut at the deadline without stopping the ones after it. The grace (SHUTDOWN_GRACE_MS) comes first whether or
 * not a client is connected: an API-only node's publishers need the load balancer to have seen /readyz go too.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { Adapter } from '../../src/adapters/adapter.js';
import { createLocalAdapter } from '../../src/adapters/local-adapter.js';
import { Deadline } from '../../src/lifecycle/deadline.js';
import { drain, type DrainParts } from '../../src/lifecycle/drain.js';
import { Hub } from '../../src/realtime/hub.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { APP, startServer } from '../helpers/server.js';
import { signedFetch } from '../helpers/signed-fetch.js';

function parts(steps: string[], overrides: Partial<DrainParts> = {}): DrainParts {
  const hub = new Hub([]);
  const noMetrics = { adapterMessage: () => undefined, adapterRequest: () => undefined };
  const local = createLocalAdapter({ metrics: noMetrics, cacheTtlMs: 1000, cacheMaxBytes: 1 << 20 });
  const adapter: Adapter = {
    ...local,
    flush: async () => void steps.push('adapter_flush'),
    close: async () => void steps.push('adapter_close'),
  };
  return {
    hub,
    adapter,
    logger: createLogger({ serviceName: 's', env: 'e', nodeId: 'n', level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
    metrics: { shutdownStarted: () => void steps.push('gauge_started'), shutdownDuration: (s) => void steps.push(`duration ${typeof s}`) },
    graceMs: 0,
    startDraining: () => void steps.push('draining'),
    stopAcceptingApi: () => void steps.push('api_stopped'),
    heartbeat: { stop: () => void steps.push('heartbeat_stopped') },
    webhooks: { close: async () => void steps.push('webhooks_closed') },
    server: { close: async () => void steps.push('server_closed') },
    ...overrides,
  };
}

test('the API stops and the adapter is flushed before connections close; every stage runs once, in order', async () => {
  const steps: string[] = [];
  const result = await drain(parts(steps), new Deadline(1000));
  assert.deepEqual(steps, [
    'draining',
    'gauge_started',
    'heartbeat_stopped',
    'api_stopped',
    'adapter_flush',
    'webhooks_closed',
    'server_closed',
    'adapter_close',
    'duration number',
  ]);
  assert.deepEqual(result.timedOut, []);
});

test('a cluster engine settles the leaves, then removes and announces what it still holds for this node, before webhooks close', async () => {
  // What the engine removes there is announced through onReaped: webhooks closed first would drop those events.
  const steps: string[] = [];
  const base = parts(steps);
  const adapter: Adapter = {
    ...base.adapter,
    settle: async () => void steps.push('adapter_settle'),
    reapOwn: async () => void steps.push('adapter_reap_own'),
  };
  await drain({ ...base, adapter }, new Deadline(1000));
  const order = ['adapter_settle', 'adapter_reap_own', 'webhooks_closed', 'adapter_close'];
  assert.deepEqual(steps.filter((s) => order.includes(s)), order);
});

test('a stage that hangs is cut at the one deadline, and the later stages still run', async () => {
  const steps: string[] = [];
  const started = performance.now();
  const result = await drain(
    parts(steps, { webhooks: { close: () => new Promise<void>(() => undefined) } }),
    new Deadline(300),
  );
  const tookMs = performance.now() - started;
  assert.deepEqual(result.timedOut, ['webhooks']);
  assert.ok(tookMs >= 290 && tookMs < 600, `the drain took ${tookMs.toFixed(0)} ms for a 300 ms deadline`);
  // Out of time, the later stages still run (here they finish at once, so they are not reported as timed out).
  assert.ok(steps.includes('server_closed') && steps.includes('adapter_close'));
});

test('the webhooks are told to give up what is in flight while a second of the deadline (half, under two) remains', async () => {
  // A probe: bounded only by the stage, their own close timeout outlasted a short deadline, and the process exited with
  // the events in flight neither delivered nor counted. Told the wait, they give them up (counted, logged) in time.
  const steps: string[] = [];
  let told: number | undefined;
  const close = async (waitMs: number) => void (told = waitMs);
  await drain(parts(steps, { webhooks: { close } }), new Deadline(1000));
  assert.ok(told !== undefined && told > 0 && told <= 500, `close() was told ${told} ms of a 1000 ms deadline`);
  // With time enough it is told all but a second: its own close timeout (2 s by default) is then what bounds it.
  await drain(parts(steps, { webhooks: { close } }), new Deadline(5000));
  // (Not 4000 to the millisecond: the stages before it take their time, more on a loaded machine.)
  assert.ok(told !== undefined && told > 2500 && told <= 4000, `close() was told ${told} ms of a 5000 ms deadline`);
});

test('Deadline: what is left shrinks to 0, never below; race() says whether the work finished in time', async () => {
  const deadline = new Deadline(100);
  assert.ok(deadline.remainingMs() > 50 && deadline.remainingMs() <= 100);
  assert.equal(await deadline.race(Promise.resolve()), true);
  assert.equal(await deadline.race(Promise.reject(new Error('a failing stage'))), true);
  assert.equal(await deadline.race(new Promise(() => undefined)), false);
  assert.equal(deadline.remainingMs(), 0);
  assert.equal(deadline.expired, true);
});

test('with no client connected, /readyz answers 503 through the grace while the API still answers, and 503 after it', async () => {
  // The grace was skipped without WebSocket clients: the API stopped at once and the process exited before the load
  // balancer saw /readyz go, so the publishers it still sent here met a closed port.
  const graceMs = 1500;
  const server = await startServer({ SHUTDOWN_GRACE_MS: String(graceMs), SHUTDOWN_TIMEOUT_MS: '5000' });
  const started = performance.now();
  const drained = server.app.drain(new Deadline(server.config.shutdownTimeoutMs));
  try {
    const readyz = await fetch(`http://127.0.0.1:${server.port}/readyz`);
    assert.equal(readyz.status, 503);
    // In the grace, publishes are accepted and queries answered (the grace is long enough for them on a slow machine:
    // when the API stops is checked below, and deterministically by the next test).
    const published = await server.sdk().trigger('orders', 'shipped', { id: 1 });
    assert.equal(published.status, 200);
    const channels = await signedFetch(server, 'GET', `/apps/${APP.id}/channels`);
    assert.equal(channels.status, 200);
    // Once it is over, the API stops accepting (the server then closes).
    let after = await signedFetch(server, 'GET', `/apps/${APP.id}/channels`).catch(() => undefined);
    while (after?.status === 200) after = await signedFetch(server, 'GET', `/apps/${APP.id}/channels`).catch(() => undefined);
    assert.ok(performance.now() - started >= graceMs - 20, 'the API stopped at the end of the grace, not before');
    assert.ok(after === undefined || after.status === 503, `after the grace: ${after?.status}`);
  } finally {
    await drained;
  }
});

test('the grace is waited before the API stops, with no connection (0: not at all)', async () => {
  for (const graceMs of [200, 0]) {
    const steps: string[] = [];
    const started = performance.now();
    let apiStoppedAfter = -1;
    await drain(
      parts(steps, {
        graceMs,
        stopAcceptingApi: () => {
          apiStoppedAfter = performance.now() - started;
        },
      }),
      new Deadline(2000),
    );
    if (graceMs > 0) assert.ok(apiStoppedAfter >= graceMs - 5, `API stopped ${apiStoppedAfter.toFixed(0)} ms in, grace ${graceMs}`);
    else assert.ok(apiStoppedAfter < 50, `API stopped ${apiStoppedAfter.toFixed(0)} ms in, no grace`);
  }
});
