/** Floods are refused with the protocol's answer and counted: API requests (429) and new connections (4111). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/server.js';

test('HTTP API: requests over API_RATE_LIMIT_PER_SECOND get 429 and are logged', async () => {
  const server = await startServer({ API_RATE_LIMIT_PER_SECOND: '5' });
  try {
    const sdk = server.sdk();
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const status = await sdk.trigger('news', 'tick', { i }).then(
        (r) => r.status,
        (err: { status?: number }) => err.status ?? 0,
      );
      statuses.push(status);
    }
    // The window is one second; eight quick requests may straddle a boundary, so count rather than expect positions.
    const refused = statuses.filter((s) => s === 429).length;
    assert.ok(refused >= 1 && statuses.filter((s) => s === 200).length >= 5, statuses.join(','));
    assert.ok(statuses.every((s) => s === 200 || s === 429));
    assert.ok(server.logs.some((l) => l.event === 'rate_limited' && l.scope === 'http_api'));
  } finally {
    await server.close();
  }
});

test('connections over CONNECTION_RATE_LIMIT_PER_SECOND are closed with 4111', async () => {
  const server = await startServer({ CONNECTION_RATE_LIMIT_PER_SECOND: '3' });
  const clients: RawClient[] = [];
  try {
    for (let i = 0; i < 6; i++) clients.push(await RawClient.connect(server.port));
    const outcomes = await Promise.all(
      clients.map(async (c) => {
        const first = await c.next(() => true);
        return first.event === 'pusher:connection_established' ? 'ok' : `closed:${(await c.waitClosed()).code}`;
      }),
    );
    assert.ok(outcomes.includes('closed:4111'), outcomes.join(','));
    assert.ok(outcomes.filter((o) => o === 'ok').length >= 3, outcomes.join(','));
    assert.ok(server.logs.some((l) => l.event === 'connection_rejected' && l.reason === 'rate_limited'));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.close();
  }
});
