/**
 * The drain sequence (src/lifecycle/drain.ts) under one deadline (src/lifecycle/deadline.ts): the stages run in the order
 * that loses nothing — the API stops accepting, the adapter is flushed, and only then are connections closed — and a stage
 * that hangs is cut at the deadline without stopping the ones after it.
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
    metrics: { shutdownDuration: (s) => void steps.push(`duration ${typeof s}`) },
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

test('Deadline: what is left shrinks to 0, never below; race() says whether the work finished in time', async () => {
  const deadline = new Deadline(100);
  assert.ok(deadline.remainingMs() > 50 && deadline.remainingMs() <= 100);
  assert.equal(await deadline.race(Promise.resolve()), true);
  assert.equal(await deadline.race(Promise.reject(new Error('a failing stage'))), true);
  assert.equal(await deadline.race(new Promise(() => undefined)), false);
  assert.equal(deadline.remainingMs(), 0);
  assert.equal(deadline.expired, true);
});
