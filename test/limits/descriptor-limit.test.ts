/**
 * The server's connections kept within the process's file descriptor limit (src/http/descriptor-limit.ts). A probe under
 * `ulimit -n 256`: past the limit libuv reset new connections without the server seeing them — 4 064 of 5 920 connects
 * reset, none counted or logged — and /metrics and /healthz failed with them.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { socketCapacity } from '../../src/http/descriptor-limit.js';
import { spawnBeacon } from '../helpers/beacon-process.js';
import { parseExposition, sumOf } from '../helpers/exposition.js';
import { RawClient } from '../helpers/raw-client.js';
import { APP } from '../helpers/server.js';
import { signedQuery } from '../helpers/signed-fetch.js';
import { eventually, until } from '../helpers/wait.js';

test('socketCapacity: the limit less what is open and a headroom of 1/16 (at least 64); nothing capped without procfs', () => {
  assert.equal(socketCapacity(256, 22), 256 - 22 - 64);
  assert.equal(socketCapacity(20_000, 30), 20_000 - 30 - 1250);
  assert.equal(socketCapacity(80, 30), 1);
  assert.equal(socketCapacity(undefined, 22), undefined);
  assert.equal(socketCapacity(256, undefined), undefined);
});

test('under a low descriptor limit, connections past what it leaves are closed unanswered, counted and logged; /metrics still answers', async () => {
  // A MAX_CONNECTIONS the limit cannot hold: said at start (its 4100 would never come before the drops).
  const beacon = await spawnBeacon({ HTTP_REQUEST_TIMEOUT_MS: '60000', MAX_CONNECTIONS: '1000' }, { fdLimit: 200 });
  const held: Socket[] = [];
  try {
    const lines = (event: string): Record<string, unknown>[] =>
      beacon.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === event);
    await until(
      () => lines('config_warning').some((w) => JSON.stringify(w.variables) === JSON.stringify(['MAX_CONNECTIONS', 'MAX_REFUSED_SOCKETS'])),
      'the warning about MAX_CONNECTIONS',
    );
    const { client: canary } = await RawClient.established(beacon.port);
    canary.send({ event: 'pusher:subscribe', data: { channel: 'canary' } });
    await canary.next('pusher_internal:subscription_succeeded');

    // Twice the limit in silent TCP connections: each either held (an HTTP request still to come) or closed by the server.
    const attempts = 400;
    let closedByServer = 0;
    let failed = 0;
    for (let i = 0; i < attempts; i++) {
      const socket = connect(beacon.port, '127.0.0.1');
      socket.on('error', () => (failed += 1));
      socket.on('close', () => (closedByServer += 1));
      held.push(socket);
    }
    await until(() => held.every((s) => !s.connecting), 'every connect answered');
    const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${beacon.metricsPort}/metrics`)).text();
    // Every drop is counted, none reset uncounted: the counted ones are the ones the server closed.
    await until(() => closedByServer > 0, 'the server closes what is past its capacity', 10_000);
    await eventually(
      async () => sumOf(parseExposition(await metrics()), 'websocket_connections_rejected_total', { reason: 'descriptor_limit' }) === closedByServer,
      'the drops counted',
      10_000,
    );
    assert.equal(failed, 0, 'no connection reset');
    await until(() => lines('connections_dropped').length > 0, 'connections_dropped logged');
    const line = lines('connections_dropped')[0]!;
    assert.equal(line.level, 'warn');
    assert.equal(line.max_fds, 200);
    // What the server held: the capacity, less the readiness check's kept-alive connection when still open.
    const heldByServer = attempts - closedByServer + 1;
    assert.ok(heldByServer <= (line.limit as number) && heldByServer >= (line.limit as number) - 1, `${heldByServer} held, limit ${String(line.limit)}`);
    // One line within the interval (DROP_LOG_INTERVAL_MS), however many were dropped.
    assert.equal(lines('connections_dropped').length, 1);
    assert.equal(beacon.logs.filter((l) => l.includes('"level":"error"')).length, 0);

    // Once the held connections go, the server takes new ones: a publish reaches the canary, held all along.
    for (const socket of held) socket.destroy();
    await eventually(async () => (await fetch(`${beacon.url}/healthz`).catch(() => undefined))?.status === 200, 'the server answers again');
    const published = await fetch(`${beacon.url}/apps/${APP.id}/events?${signedQuery('POST', `/apps/${APP.id}/events`, { body: PUBLISH_BODY })}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: PUBLISH_BODY,
    });
    assert.equal(published.status, 200);
    assert.equal((await canary.next('ev')).channel, 'canary');
    await canary.close();
  } finally {
    for (const socket of held) socket.destroy();
    await beacon.stop();
  }
});

const PUBLISH_BODY = JSON.stringify({ name: 'ev', channels: ['canary'], data: '{}' });
