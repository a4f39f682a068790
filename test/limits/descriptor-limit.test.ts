/**
 * The server's connections kept within the process's file descriptor limit (src/http/descriptor-limit.ts). A probe under
 * `ulimit -n 256`: past the limit libuv reset new connections without the server seeing them — 4 064 of 5 920 connects
 * reset, none counted or logged — and /metrics and /healthz failed with them.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { connect, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { capConnections, DROP_LOG_INTERVAL_MS, descriptorBudget } from '../../src/http/descriptor-limit.js';
import type { Metrics } from '../../src/telemetry/metrics.js';
import { capturedLogger } from '../helpers/unit.js';
import { spawnBeacon } from '../helpers/beacon-process.js';
import { parseExposition, sumOf } from '../helpers/exposition.js';
import { RawClient } from '../helpers/raw-client.js';
import { APP } from '../helpers/server.js';
import { signedQuery } from '../helpers/signed-fetch.js';
import { eventually, until } from '../helpers/wait.js';

test('descriptorBudget: the limit less what is open and a headroom, WebSockets less a share for the HTTP API; nothing capped without procfs', () => {
  // 256 - 22 open - 64 headroom = 170 connections; 32 of them (at least 32, else 1/16) kept from WebSockets, half of those
  // for refused upgrades.
  assert.deepEqual(descriptorBudget(256, 22), { sockets: 170, webSockets: 138, refusedSockets: 16 });
  assert.deepEqual(descriptorBudget(20_000, 30), { sockets: 18_720, webSockets: 17_550, refusedSockets: 585 });
  assert.deepEqual(descriptorBudget(80, 30), { sockets: 1, webSockets: 1, refusedSockets: 16 });
  assert.equal(descriptorBudget(undefined, 22), undefined);
  assert.equal(descriptorBudget(256, undefined), undefined);
});

test('under a low descriptor limit: WebSockets past what it leaves get 4100 and probes still answer; connections past all of it are closed unanswered, counted and logged', async () => {
  // A MAX_CONNECTIONS the limit cannot hold: said at start.
  const beacon = await spawnBeacon({ HTTP_REQUEST_TIMEOUT_MS: '60000', MAX_CONNECTIONS: '1000' }, { fdLimit: 200 });
  const held: Socket[] = [];
  const clients: RawClient[] = [];
  try {
    const lines = (event: string): Record<string, unknown>[] =>
      beacon.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === event);
    await until(() => lines('config_warning').some((w) => JSON.stringify(w.variables) === '["MAX_CONNECTIONS"]'), 'the warning');
    const metric = async (reason: string): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${beacon.metricsPort}/metrics`)).text();
      return sumOf(parseExposition(text), 'websocket_connections_rejected_total', { reason });
    };
    const { client: canary } = await RawClient.established(beacon.port);
    canary.send({ event: 'pusher:subscribe', data: { channel: 'canary' } });
    await canary.next('pusher_internal:subscription_succeeded');

    // WebSockets until one is refused: with the protocol's 4100, while a share is kept for the API and the probes.
    let refused: { code: unknown } | undefined;
    for (let i = 0; i < 200 && refused === undefined; i++) {
      const client = await RawClient.connect(beacon.port);
      clients.push(client);
      const first = await client.next((f) => f.event === 'pusher:connection_established' || f.event === 'pusher:error');
      if (first.event === 'pusher:error') refused = first.data as { code: unknown };
    }
    assert.equal(refused?.code, 4100);
    assert.equal((await clients.at(-1)!.waitClosed()).code, 4100);
    assert.ok(clients.length > 50, `${clients.length - 1} WebSockets held`);
    // The health probe and the API still get in: a liveness probe dropped at a full node would restart it.
    assert.equal((await fetch(`${beacon.url}/healthz`)).status, 200);
    assert.equal(await metric('descriptor_limit'), 0);
    assert.ok((await metric('over_capacity')) >= 1);

    // Then twice the limit in silent TCP connections: each either held (an HTTP request still to come) or closed by the
    // server as soon as accepted.
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
    // Every drop is counted, none reset uncounted: the counted ones are the ones the server closed.
    await until(() => closedByServer > 0, 'the server closes what is past its capacity', 10_000);
    await eventually(async () => (await metric('descriptor_limit')) === closedByServer, 'the drops counted', 10_000);
    assert.equal(failed, 0, 'no connection reset');
    await until(() => lines('connections_dropped').length > 0, 'connections_dropped logged');
    const line = lines('connections_dropped')[0]!;
    assert.equal(line.level, 'warn');
    assert.equal(line.max_fds, 200);
    // What the server held: the silent sockets it kept, the WebSockets (the canary and all but the refused one), and up
    // to 3 kept-alive HTTP connections (the readiness checks', the probe's) not counted here.
    const heldByServer = attempts - closedByServer + 1 + (clients.length - 1);
    const limit = line.limit as number;
    assert.ok(heldByServer <= limit && heldByServer >= limit - 3, `${heldByServer} held, limit ${limit}`);
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
    for (const client of clients) client.ws.terminate();
    await beacon.stop();
  }
});

test('connections_dropped: one line an interval, and one at its end for the drops not told yet', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let clock = 1_000_000;
  const server = new EventEmitter() as EventEmitter & { maxConnections?: number };
  const { logger, lines: told } = capturedLogger();
  const counted: string[] = [];
  capConnections(server as unknown as Server, 5, {
    metrics: { connectionRejected: (reason: string) => counted.push(reason) } as unknown as Metrics,
    logger,
    maxFds: 100,
    now: () => clock,
  });
  assert.equal(server.maxConnections, 5);
  /** The injected clock and the timers move together. */
  const advance = (ms: number): void => {
    clock += ms;
    t.mock.timers.tick(ms);
  };
  server.emit('drop');
  for (let i = 0; i < 4; i++) {
    advance(1000);
    server.emit('drop');
  }
  assert.deepEqual(told.map((l) => l.dropped), [1]);
  // The burst's last four are told at the end of the interval (they were never told).
  advance(DROP_LOG_INTERVAL_MS - 4000 - 1);
  assert.equal(told.length, 1);
  advance(1);
  assert.deepEqual(told.map((l) => l.dropped), [1, 4]);
  assert.equal(counted.length, 5);
  assert.ok(counted.every((reason) => reason === 'descriptor_limit'));
  // Nothing more to tell: no line at the next interval's end; the next drop after it is told at once.
  advance(DROP_LOG_INTERVAL_MS);
  assert.equal(told.length, 2);
  server.emit('drop');
  assert.deepEqual(told.map((l) => l.dropped), [1, 4, 1]);
});

const PUBLISH_BODY = JSON.stringify({ name: 'ev', channels: ['canary'], data: '{}' });
