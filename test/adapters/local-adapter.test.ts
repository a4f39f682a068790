import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLocalAdapter } from '../../src/adapters/local-adapter.js';
import { adapterContract } from './adapter-contract.js';

const noMetrics = { adapterMessage: () => undefined, adapterRequest: () => undefined };

adapterContract('local adapter', (clock, cacheTtlMs) =>
  createLocalAdapter({ metrics: noMetrics, cacheTtlMs, now: clock.now }),
);

test('local adapter: counts each publish as published and received, and times its queries', async () => {
  const recorded: string[] = [];
  const adapter = createLocalAdapter({
    metrics: { adapterMessage: (d) => recorded.push(d), adapterRequest: (op) => recorded.push(op) },
    cacheTtlMs: 1000,
  });
  adapter.publish({
    appId: 'x',
    channel: 'c',
    event: 'e',
    data: '',
    userId: undefined,
    excludeSocketId: undefined,
    kind: 'channel_event',
    traceparent: undefined,
    publishedAt: 0,
  });
  await adapter.channels('x');
  await adapter.channel('x', 'c');
  await adapter.members('x', 'c');
  assert.deepEqual(recorded, ['published', 'received', 'channels', 'counts', 'members']);
});
