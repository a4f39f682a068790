/**
 * The WebSocket connection: handshake, every refusal close code (4001, 4003, 4004, 4005, 4006, 4007, 4100) with its
 * pusher:error frame and one connection_rejected log line, pusher:ping → pusher:pong, and the server heartbeat: a silent
 * client is pinged after ACTIVITY_TIMEOUT and closed with 4201 when no pong comes; a client that answers stays. A broken
 * WebSocket handshake gets an HTTP 400 with the error registry's body, counted and logged like every refused upgrade.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loggedOnce, logLines } from '../helpers/logs.js';
import { connected, nextEvent } from '../helpers/pusher-events.js';
import { PUSHER_QUERY, RawClient } from '../helpers/raw-client.js';
import { exchange, parseResponse } from '../helpers/raw-http.js';
import { APP, startServer, startServerWithApps, type TestServer } from '../helpers/server.js';
import { silentSocket } from '../helpers/silent-socket.js';
import { signedQuery } from '../helpers/signed-fetch.js';
import { until, within } from '../helpers/wait.js';
import { createLocalAdapter } from '../../src/adapters/local-adapter.js';
import { Deadline } from '../../src/lifecycle/deadline.js';
import type { Adapter } from '../../src/adapters/adapter.js';
import type { Metrics } from '../../src/telemetry/metrics.js';
import { sumOf } from '../helpers/exposition.js';
import { maxMessageFragments } from '../../src/transport/ws-options.js';
import { exportedMetrics } from '../helpers/exported-metrics.js';

/** Opens a raw connection the server must refuse; returns the pusher:error data and the close frame. */
async function refused(server: TestServer, path: string) {
  const client = await RawClient.connect(server.port, path);
  const closed = await client.waitClosed();
  const error = client.frames.find((f) => f.event === 'pusher:error');
  assert.ok(error !== undefined, `a pusher:error frame before the close on ${path}`);
  assert.equal(client.all('pusher:connection_established').length, 0);
  return { error: error.data as { message: string; code: number }, closed };
}

test('handshake: pusher:connection_established with a string-encoded socket_id and activity_timeout', async () => {
  const server = await startServer();
  try {
    const raw = await RawClient.connect(server.port);
    const frame = await raw.next('pusher:connection_established');
    assert.equal(typeof frame.raw, 'string', 'server → client data is a JSON string');
    const data = frame.data as { socket_id: string; activity_timeout: number };
    assert.match(data.socket_id, /^\d+\.\d+$/);
    assert.equal(data.activity_timeout, 120);
    assert.equal(raw.frames[0]?.event, 'pusher:connection_established', 'the first frame');
    await raw.close();

    const socketId = await connected(server.client());
    assert.match(socketId, /^\d+\.\d+$/);
    assert.notEqual(socketId, data.socket_id);
  } finally {
    await server.close();
  }
});

test('handshake: activity_timeout follows ACTIVITY_TIMEOUT', async () => {
  const server = await startServer({ ACTIVITY_TIMEOUT: '30' });
  try {
    const raw = await RawClient.connect(server.port);
    const frame = await raw.next('pusher:connection_established');
    assert.equal((frame.data as { activity_timeout: number }).activity_timeout, 30);
    await raw.close();
  } finally {
    await server.close();
  }
});

test('unknown app key: pusher:error and close 4001', async () => {
  const server = await startServer();
  try {
    const { error, closed } = await refused(server, `/app/no-such-key?${PUSHER_QUERY}`);
    assert.equal(closed.code, 4001);
    assert.equal(error.code, 4001);
    const line = await loggedOnce(server, { event: 'connection_rejected', reason: 'unknown_app' });
    assert.equal(line.code, 4001);
    assert.equal(line.app_id, undefined);
  } finally {
    await server.close();
  }
});

test('unknown app key with pusher-js: the client surfaces the 4001 error and does not connect', async () => {
  const server = await startServer();
  try {
    const client = server.client({}, 'no-such-key');
    const stateAfter = nextEvent<{ previous: string; current: string }>(client.connection, 'state_change');
    // During the handshake pusher-js wraps the server's pusher:error in a WebSocketError.
    const error = await nextEvent<{ error: { type: string; data: { code: number; message: string } } }>(client.connection, 'error');
    assert.equal(error.error.type, 'PusherError');
    assert.equal(error.error.data.code, 4001);
    // 4000–4099: pusher-js gives up instead of reconnecting.
    assert.deepEqual(await stateAfter, { previous: 'connecting', current: 'disconnected' });
  } finally {
    await server.close();
  }
});

test('disabled app (APPS_FILE): close 4003', async () => {
  const server = await startServerWithApps([
    { id: APP.id, key: APP.key, secret: APP.secret },
    { id: 'off-id', key: 'off-key', secret: 'off-secret', enabled: false },
  ]);
  try {
    const { error, closed } = await refused(server, `/app/off-key?${PUSHER_QUERY}`);
    assert.equal(closed.code, 4003);
    assert.equal(error.code, 4003);
    // The line names the tenant refused; an unknown key's names none (above).
    await loggedOnce(server, { event: 'connection_rejected', reason: 'app_disabled', app_id: 'off-id' });
    // The enabled app of the same file connects.
    await connected(server.client());
  } finally {
    await server.close();
  }
});

test('per-app quota (APP_MAX_CONNECTIONS): the connection over it is closed with 4004', async () => {
  const observed = await exportedMetrics();
  const server = await startServer({ APP_MAX_CONNECTIONS: '2' }, { metrics: observed.metrics });
  try {
    const first = await RawClient.established(server.port);
    const second = await RawClient.established(server.port);
    const { error, closed } = await refused(server, `/app/${APP.key}?${PUSHER_QUERY}`);
    assert.equal(closed.code, 4004);
    assert.equal(error.code, 4004);
    await loggedOnce(server, { event: 'connection_rejected', reason: 'over_quota', app_id: APP.id });
    // Counted under the tenant refused, as its line names it.
    assert.equal(sumOf(await observed.scrape(), 'websocket_connections_rejected_total', { reason: 'over_quota', app_id: APP.id }), 1);
    // Room again once one has left (the server forgets it when its close completes).
    await first.client.close();
    await until(() => server.app.hub.connectionCount() === 1, 'the closed connection to be forgotten');
    const third = await RawClient.established(server.port);
    await third.client.close();
    await second.client.close();
  } finally {
    await server.close();
    await observed.close();
  }
});

test('unknown path: close 4005, counted and logged as unknown_path with no app', async () => {
  // A review: it was counted and logged `bad_protocol`, documented as an unsupported protocol version, so scanners and
  // misrouted clients read as old pusher-js versions.
  const observed = await exportedMetrics();
  const server = await startServer({}, { metrics: observed.metrics });
  try {
    const { error, closed } = await refused(server, `/not-app/${APP.key}?${PUSHER_QUERY}`);
    assert.equal(closed.code, 4005);
    assert.equal(error.code, 4005);
    const line = await loggedOnce(server, { event: 'connection_rejected', code: 4005 });
    assert.equal(line.reason, 'unknown_path');
    assert.equal(line.app_id, undefined);
    const families = await observed.scrape();
    assert.equal(sumOf(families, 'websocket_connections_rejected_total', { reason: 'unknown_path' }), 1);
    assert.equal(sumOf(families, 'websocket_connections_rejected_total', { reason: 'bad_protocol' }), 0);
  } finally {
    await observed.close();
    await server.close();
  }
});

test('an upgrade to an HTTP route (health, readiness, an API GET signed or not) is refused with 4005 like any other path', async () => {
  // @fastify/websocket closed these itself after the 101: no pusher:error, nothing counted, and an unbounded info line per
  // attempt carrying the raw URL — an API request's signature included.
  const server = await startServer();
  try {
    const channels = `/apps/${APP.id}/channels`;
    const query = signedQuery('GET', channels);
    // Unsigned: no API call either (it was answered 401 by the signature check and counted as an API auth failure).
    for (const path of ['/healthz', '/readyz', `${channels}?${query}`, channels]) {
      const { error, closed } = await refused(server, path);
      assert.equal(closed.code, 4005, path);
      assert.equal(error.code, 4005, path);
    }
    await until(() => logLines(server, { event: 'connection_rejected', code: 4005 }).length === 4, 'four connection_rejected lines');
    assert.deepEqual(logLines(server, { event: 'auth_failed' }), []);
    assert.deepEqual(logLines(server, { event: 'api_request' }), []);
    const signature = new URLSearchParams(query).get('auth_signature') ?? '';
    assert.ok(signature.length > 0);
    assert.doesNotMatch(JSON.stringify(server.logs), new RegExp(signature), 'the signature is never logged');
    assert.deepEqual(
      server.logs.filter((l) => String(l.msg).includes('no websocket handler')),
      [],
      "@fastify/websocket's own line",
    );
  } finally {
    await server.close();
  }
});

test('a HEAD upgrade gets the 404 and its socket closed, on the WebSocket path and any other', async () => {
  // Node passes a HEAD with Upgrade to the upgrade path; its socket was corked for a wsHandler no HEAD route has, so the
  // 404 was never written and the socket never let go (upgraded sockets are out of Node's request timeouts).
  const server = await startServer();
  try {
    for (const path of [`/app/${APP.key}?${PUSHER_QUERY}`, '/nowhere']) {
      const head = [
        `HEAD ${path} HTTP/1.1`,
        'Host: x',
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      ];
      const answer = parseResponse(await exchange(server.port, `${head.join('\r\n')}\r\n\r\n`));
      assert.equal(answer.status, 'HTTP/1.1 404 Not Found', path);
    }
  } finally {
    await server.close();
  }
});

test('a plain GET to the WebSocket path (no upgrade) gets the JSON 404 of any unknown path, and its line', async () => {
  const server = await startServer();
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}/app/${APP.key}?${PUSHER_QUERY}`);
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: 'Not found' });
    await loggedOnce(server, { event: 'api_request', route: 'unmatched', path: `/app/${APP.key}` });
  } finally {
    await server.close();
  }
});

test('bad protocol: not a number → 4006, unsupported version → 4007', async () => {
  const server = await startServer();
  try {
    const invalid = await refused(server, `/app/${APP.key}?protocol=seven&client=js`);
    assert.equal(invalid.closed.code, 4006);
    assert.equal(invalid.error.code, 4006);
    const unsupported = await refused(server, `/app/${APP.key}?protocol=99&client=js`);
    assert.equal(unsupported.closed.code, 4007);
    assert.equal(unsupported.error.code, 4007);
    await loggedOnce(server, { event: 'connection_rejected', reason: 'bad_protocol', code: 4006 });
    await loggedOnce(server, { event: 'connection_rejected', reason: 'bad_protocol', code: 4007 });
    // Not a version as written, though Number() reads each as one (0, 7, 7, 7): invalid, not "unsupported 0".
    for (const written of ['', '%207', '0x7', '7.0']) {
      const odd = await refused(server, `/app/${APP.key}?protocol=${written}&client=js`);
      assert.equal(odd.closed.code, 4006, `protocol=${written}`);
    }
  } finally {
    await server.close();
  }
});

/** Sends an upgrade request with `headers` and resolves with everything the server wrote before it closed the socket. */
async function rawUpgrade(port: number, headers: Record<string, string>): Promise<string> {
  const socket = await silentSocket(port, `/app/${APP.key}?${PUSHER_QUERY}`, headers);
  try {
    await within(socket.ended, 'the server to close the refused socket', 3000);
    return socket.received().toString('latin1');
  } finally {
    socket.destroy();
  }
}

test('a broken WebSocket handshake: HTTP 400 with the registry error, counted and logged as bad_handshake', async () => {
  const server = await startServer();
  try {
    // The key is checked before the version: with both wrong, the key is the fault named, and no versions are listed.
    const badKey = parseResponse(await rawUpgrade(server.port, { 'Sec-WebSocket-Key': 'not-a-key', 'Sec-WebSocket-Version': '12' }));
    assert.equal(badKey.status, 'HTTP/1.1 400 Bad Request');
    assert.equal(badKey.headers['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual(JSON.parse(badKey.body), { error: 'Invalid WebSocket handshake: Missing or invalid Sec-WebSocket-Key header' });
    assert.equal(badKey.headers['sec-websocket-version'], undefined, 'the version was not the fault');
    const keyLine = await loggedOnce(server, { event: 'connection_rejected', reason: 'bad_handshake', detail: 'Missing or invalid Sec-WebSocket-Key header' });
    assert.equal(keyLine.level, 'info', "a client's fault, not the server's");
    assert.equal(keyLine.code, 400);
    assert.equal(keyLine.remote_address, '127.0.0.1');
    assert.equal(typeof keyLine.request_id, 'string');

    // A version ws does not speak ("13.0" is not "13"): the answer names the versions it does (RFC 6455 §4.4).
    for (const version of ['12', '13.0']) {
      const badVersion = parseResponse(await rawUpgrade(server.port, { 'Sec-WebSocket-Version': version }));
      assert.equal(badVersion.status, 'HTTP/1.1 400 Bad Request', `Sec-WebSocket-Version: ${version}`);
      assert.equal(badVersion.headers['sec-websocket-version'], '13, 8');
      assert.deepEqual(JSON.parse(badVersion.body), { error: 'Invalid WebSocket handshake: Missing or invalid Sec-WebSocket-Version header' });
    }
    await until(() => logLines(server, { event: 'connection_rejected', reason: 'bad_handshake' }).length === 3, 'three bad_handshake lines');
    assert.deepEqual(logLines(server, { level: 'error' }), []);

    // The server goes on serving.
    assert.match(await connected(server.client()), /^\d+\.\d+$/);
  } finally {
    await server.close();
  }
});

test('an upgrade without Host, or in HTTP/1.0, is refused 400 as a bad handshake (RFC 6455 §4.1), not opened', async () => {
  // A plain HTTP/1.1 request without Host was refused (API_HOST_REQUIRED); an upgrade went around that guard and was
  // opened, and so was an HTTP/1.0 one.
  const observed = await exportedMetrics();
  const server = await startServer({}, { metrics: observed.metrics });
  try {
    const upgrade = (version: string, host: string[]): string =>
      [
        `GET /app/${APP.key}?${PUSHER_QUERY} HTTP/${version}`,
        ...host,
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      ].join('\r\n') + '\r\n\r\n';
    const cases = [
      { version: '1.1', host: [], detail: 'no Host header' },
      { version: '1.0', host: ['Host: x'], detail: 'HTTP/1.0 (the handshake needs HTTP/1.1)' },
      { version: '0.9', host: ['Host: x'], detail: 'HTTP/0.9 (the handshake needs HTTP/1.1)' },
      { version: '2.0', host: ['Host: x'], detail: 'HTTP/2.0 (the handshake needs HTTP/1.1)' },
    ];
    for (const { version, host, detail } of cases) {
      const answer = parseResponse(await exchange(server.port, upgrade(version, host)));
      assert.match(answer.status, /^HTTP\/1\.[01] 400 Bad Request$/, detail);
      assert.deepEqual(JSON.parse(answer.body), { error: `Invalid WebSocket handshake: ${detail}` });
      const line = await loggedOnce(server, { event: 'connection_rejected', reason: 'bad_handshake', detail });
      assert.equal(line.level, 'info');
    }
    assert.equal(logLines(server, { event: 'connection_opened' }).length, 0);
    assert.equal(sumOf(await observed.scrape(), 'websocket_connections_rejected_total', { reason: 'bad_handshake' }), cases.length);
    assert.match(await connected(server.client()), /^\d+\.\d+$/);
  } finally {
    await server.close();
  }
});

test('connection_opened tells the client\'s user agent and query values, cut when long: one line per connection stays small', async () => {
  const server = await startServer();
  try {
    const agent = `pusher-js/8.4.0 ${'x'.repeat(15_000)}`;
    const { client } = await RawClient.established(server.port);
    await client.close();
    const plain = await loggedOnce(server, { event: 'connection_opened' });
    assert.deepEqual([plain.protocol, plain.client], ['7', 'js']);
    const long = await RawClient.connect(server.port, `/app/${APP.key}?protocol=7&client=${'c'.repeat(100)}&version=8.4.0`, { 'User-Agent': agent });
    await long.next('pusher:connection_established');
    await long.close();
    await until(() => logLines(server, { event: 'connection_opened' }).length === 2, 'the second connection_opened');
    const line = logLines(server, { event: 'connection_opened' })[1]!;
    assert.equal(line.user_agent, `${agent.slice(0, 512)}…`);
    assert.equal(line.client, `${'c'.repeat(64)}…`);
    assert.equal(line.version, '8.4.0');
    assert.ok(JSON.stringify(line).length < 1500, `a ${JSON.stringify(line).length}-character line`);
    // A parameter given twice is a list to the query parser: written joined and cut all the same (it was written whole).
    const twice = await RawClient.connect(
      server.port,
      `/app/${APP.key}?protocol=7&client=${'c'.repeat(7000)}&client=js&version=${'v'.repeat(7000)}&version=8.4.0`,
    );
    await twice.next('pusher:connection_established');
    await twice.close();
    await until(() => logLines(server, { event: 'connection_opened' }).length === 3, 'the third connection_opened');
    const repeated = logLines(server, { event: 'connection_opened' })[2]!;
    assert.deepEqual([repeated.client, repeated.version], [`${'c'.repeat(64)}…`, `${'v'.repeat(64)}…`]);
    assert.ok(JSON.stringify(repeated).length < 1500, `a ${JSON.stringify(repeated).length}-character line`);
    const short = await RawClient.connect(server.port, `/app/${APP.key}?protocol=7&client=js&client=node&version=8.4.0`);
    await short.next('pusher:connection_established');
    await short.close();
    await until(() => logLines(server, { event: 'connection_opened' }).length === 4, 'the fourth connection_opened');
    assert.equal(logLines(server, { event: 'connection_opened' })[3]!.client, 'js,node');
  } finally {
    await server.close();
  }
});

test('process capacity (MAX_CONNECTIONS): the connection over it is closed with 4100', async () => {
  const server = await startServer({ MAX_CONNECTIONS: '1' });
  try {
    const { client: first } = await RawClient.established(server.port);
    const { error, closed } = await refused(server, `/app/${APP.key}?${PUSHER_QUERY}`);
    assert.equal(closed.code, 4100);
    assert.equal(error.code, 4100);
    await loggedOnce(server, { event: 'connection_rejected', reason: 'over_capacity' });
    assert.equal(first.ws.readyState, first.ws.OPEN, 'the admitted connection is untouched');
    await first.close();
  } finally {
    await server.close();
  }
});

test('process capacity holds connections whose app quota the cluster is still counting (a burst passed it before)', async () => {
  // The engine's quota answers are held until the test lets them go, as a Redis a round trip away holds them.
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let asked = 0;
  const adapter = (_hub: unknown, metrics: Metrics): Adapter => {
    const local = createLocalAdapter({ metrics, cacheTtlMs: 60_000, cacheMaxBytes: 1 << 20 });
    const reserve = local.reserveConnection.bind(local);
    return Object.assign(local, {
      async reserveConnection(appId: string, max: number, id: string): Promise<boolean> {
        asked++;
        await released;
        return reserve(appId, max, id);
      },
    });
  };
  const server = await startServer({ MAX_CONNECTIONS: '1', APP_MAX_CONNECTIONS: '5' }, { adapter });
  try {
    const first = await RawClient.connect(server.port);
    await until(() => asked === 1, 'the first connection counted by the cluster');
    // Before: admitted too (the cap read only the hub, where the first is not yet), and both opened.
    const { closed } = await refused(server, `/app/${APP.key}?${PUSHER_QUERY}`);
    assert.equal(closed.code, 4100);
    assert.equal(asked, 1, 'the second never reached the quota');
    release();
    await first.next('pusher:connection_established');
    assert.equal(server.app.hub.connectionCount(), 1);
    // Its place is the hub's now: one more is still over capacity, not counted twice.
    const again = await refused(server, `/app/${APP.key}?${PUSHER_QUERY}`);
    assert.equal(again.closed.code, 4100);
    await first.close();
  } finally {
    await server.close();
  }
});

/** The frames a server sent after its response head (unmasked, as a server's are): opcode and payload. */
function serverFrames(bytes: Buffer): { opcode: number; payload: Buffer }[] {
  const frames: { opcode: number; payload: Buffer }[] = [];
  let at = bytes.indexOf('\r\n\r\n') + 4;
  while (at + 2 <= bytes.length) {
    let length = bytes[at + 1]! & 0x7f;
    let start = at + 2;
    if (length === 126) {
      length = bytes.readUInt16BE(at + 2);
      start += 2;
    }
    if (start + length > bytes.length) break;
    frames.push({ opcode: bytes[at]! & 0x0f, payload: bytes.subarray(start, start + length) });
    at = start + length;
  }
  return frames;
}

test('an upgrade the cluster was still counting when the drain began is refused with 4200, not opened past the drain', async () => {
  // The engine's quota answer is held until the drain is over (its snapshot of connections to close long taken).
  let reserving!: () => void;
  const reserveCalled = new Promise<void>((resolve) => (reserving = resolve));
  let answer!: () => void;
  const answered = new Promise<void>((resolve) => (answer = resolve));
  const adapter = (_hub: unknown, metrics: Metrics): Adapter => {
    const local = createLocalAdapter({ metrics, cacheTtlMs: 60_000, cacheMaxBytes: 1 << 20 });
    const reserve = local.reserveConnection.bind(local);
    const settle = local.settle.bind(local);
    return Object.assign(local, {
      async reserveConnection(appId: string, max: number, id: string): Promise<boolean> {
        reserving();
        await answered;
        return reserve(appId, max, id);
      },
      // The quota answers once the drain has closed its connections (step 6), the HTTP server still open.
      async settle(): Promise<void> {
        answer();
        await new Promise((resolve) => setImmediate(resolve));
        return settle();
      },
    });
  };
  const server = await startServer({ APP_MAX_CONNECTIONS: '5' }, { adapter });
  try {
    const client = await RawClient.connect(server.port);
    await within(reserveCalled, 'the quota asked');
    const drained = server.app.drain(new Deadline(2000));
    const closed = await client.waitClosed();
    await drained;
    assert.equal(closed.code, 4200);
    assert.equal(client.all('pusher:connection_established').length, 0);
    assert.equal(server.app.hub.connectionCount(), 0);
  } finally {
    await server.close();
  }
});

test('WebSocket pings are frames: answered within the frame budget, a burst past it refused with 4301, never cut silently', async () => {
  // ws answered pings itself and terminated the socket (1006, no reason anywhere) once 60 pongs were unwritten: 61 pings
  // in one read did it, whatever the client's rate.
  const server = await startServer({ FRAME_RATE_LIMIT_PER_SECOND: '100' });
  try {
    const raw = await silentSocket(server.port, `/app/${APP.key}?${PUSHER_QUERY}`);
    // 150 pings in one write, each masked (a zero key) with its number as payload.
    raw.socket.write(Buffer.concat(Array.from({ length: 150 }, (_, i) => Buffer.from([0x89, 0x81, 0, 0, 0, 0, i]))));
    const refusedFrame = (f: { opcode: number; payload: Buffer }) => f.opcode === 1 && f.payload.toString().includes('4301');
    await until(() => serverFrames(raw.received()).some(refusedFrame), 'the 4301 pusher:error');
    await until(() => serverFrames(raw.received()).filter((f) => f.opcode === 0x0a).length >= 100, '100 pongs');
    const pongs = serverFrames(raw.received()).filter((f) => f.opcode === 0x0a);
    assert.deepEqual(
      pongs.map((f) => f.payload[0]),
      Array.from({ length: 100 }, (_, i) => i),
      'the pings within the budget answered in order, no more',
    );
    // Each of the 50 refused is counted; the connection's rejection cap bounds their lines.
    const lines = logLines(server, { event: 'rate_limited', reason: 'frame_rate_limited' }).length;
    assert.ok(lines >= 1 && lines <= 20, `${lines} lines`);
    assert.equal(server.app.hub.connectionCount(), 1, 'the connection is held, not cut');
    raw.destroy();
  } finally {
    await server.close();
  }
});

test('WebSocket pong frames a client sends unasked are frames too: counted, and past the budget refused with 4301', async () => {
  const server = await startServer({ FRAME_RATE_LIMIT_PER_SECOND: '100' });
  try {
    const raw = await silentSocket(server.port, `/app/${APP.key}?${PUSHER_QUERY}`);
    // 150 pongs in one write, each masked (a zero key) with one byte of payload.
    raw.socket.write(Buffer.concat(Array.from({ length: 150 }, (_, i) => Buffer.from([0x8a, 0x81, 0, 0, 0, 0, i]))));
    const refusedFrame = (f: { opcode: number; payload: Buffer }) => f.opcode === 1 && f.payload.toString().includes('4301');
    await until(() => serverFrames(raw.received()).some(refusedFrame), 'the 4301 pusher:error');
    await until(() => logLines(server, { event: 'rate_limited', reason: 'frame_rate_limited' }).length >= 1, 'a rate_limited line');
    assert.equal(server.app.hub.connectionCount(), 1, 'the connection is held, not cut');
    raw.destroy();
  } finally {
    await server.close();
  }
});

test('pusher:ping is answered with pusher:pong (raw and pusher-js)', async () => {
  const server = await startServer();
  try {
    const { client: raw } = await RawClient.established(server.port);
    raw.send({ event: 'pusher:ping', data: {} });
    await raw.next('pusher:pong');
    await raw.close();

    const client = server.client();
    await connected(client);
    const pong = nextEvent(client, 'pusher:pong');
    client.send_event('pusher:ping', {});
    await pong;
  } finally {
    await server.close();
  }
});

// Each heartbeat test waits out real activity timeouts (about 2 s); they share nothing, so they run side by side.
describe('heartbeat', { concurrency: true }, () => {
  test('a silent client is pinged after ACTIVITY_TIMEOUT and closed with 4201 when no pong comes', async () => {
    const server = await startServer({ ACTIVITY_TIMEOUT: '1', PONG_TIMEOUT_MS: '300' });
    try {
      const { client: silent } = await RawClient.established(server.port);
      const opened = Date.now();
      await silent.next('pusher:ping', 3000);
      assert.ok(Date.now() - opened >= 900, 'not pinged before the activity timeout');
      const closed = await silent.waitClosed(3000);
      assert.equal(closed.code, 4201);
      const error = silent.frames.find((f) => f.event === 'pusher:error');
      assert.equal((error?.data as { code?: number } | undefined)?.code, 4201);
      const line = await loggedOnce(server, { event: 'connection_closed', reason: 'pong_timeout' });
      assert.equal(line.code, 4201);
    } finally {
      await server.close();
    }
  });

  test('WebSocket pings alone do not keep a connection alive: one holding half a message is closed with 4201', async () => {
    // A text frame without FIN is held by ws (up to twice MAX_PAYLOAD_BYTES) until its last fragment; the client cannot
    // answer pusher:ping meanwhile. Had pings counted as activity, a ping every 100 ms would hold it, and its buffer, forever.
    const server = await startServer({ ACTIVITY_TIMEOUT: '1', PONG_TIMEOUT_MS: '300' });
    try {
      const raw = await silentSocket(server.port, `/app/${APP.key}?${PUSHER_QUERY}`);
      const half = Buffer.from('{"event":"pusher:ping","da');
      raw.socket.write(Buffer.concat([Buffer.from([0x01, 0x80 | half.length, 0, 0, 0, 0]), half]));
      const ping = Buffer.from([0x89, 0x80, 0, 0, 0, 0]);
      const pinging = setInterval(() => raw.socket.write(ping), 100);
      try {
        await within(raw.ended, 'the connection to be closed', 5000);
      } finally {
        clearInterval(pinging);
      }
      const line = await loggedOnce(server, { event: 'connection_closed', reason: 'pong_timeout' });
      assert.equal(line.code, 4201);
    } finally {
      await server.close();
    }
  });

  test('a message may come in fragments, up to one per 4 KiB of the largest frame; one more is closed 1008 too_large', async () => {
    // gorilla/websocket writes a long message in frames of its 4 KiB write buffer: such a message is taken whole. A message
    // in more fragments than that bound (50 at the default MAX_PAYLOAD_BYTES) is one ws would have held, each fragment
    // keeping the whole read it came in alive, up to 16 384 of them.
    const server = await startServer();
    try {
      const limit = maxMessageFragments(100_000);
      assert.equal(limit, 50);
      const sendInFragments = (client: RawClient, text: string, count: number): void => {
        const size = Math.ceil(text.length / count);
        for (let i = 0; i < count; i++) client.ws.send(text.slice(i * size, (i + 1) * size), { fin: i === count - 1 });
      };
      const { client: whole } = await RawClient.established(server.port);
      const ping = JSON.stringify({ event: 'pusher:ping', data: { pad: 'x'.repeat(90_000) } });
      sendInFragments(whole, ping, limit);
      await whole.next('pusher:pong');
      await whole.close();

      const { client: over } = await RawClient.established(server.port);
      sendInFragments(over, JSON.stringify({ event: 'pusher:ping', data: { pad: 'x'.repeat(limit + 1) } }), limit + 1);
      const closed = await over.waitClosed();
      assert.equal(closed.code, 1008);
      assert.equal(over.all('pusher:pong').length, 0);
      const line = await loggedOnce(server, { event: 'message_rejected', reason: 'too_large' });
      assert.equal(line.error, 'WS_ERR_TOO_MANY_BUFFERED_PARTS');
      assert.deepEqual(logLines(server, { level: 'error' }), []);
    } finally {
      await server.close();
    }
  });

  test('a client that answers the server ping stays connected past the pong timeout', async () => {
    const server = await startServer({ ACTIVITY_TIMEOUT: '1', PONG_TIMEOUT_MS: '300' });
    try {
      const { client: raw } = await RawClient.established(server.port);
      raw.ws.on('message', (data: Buffer) => {
        if ((JSON.parse(data.toString()) as { event: string }).event === 'pusher:ping') raw.send({ event: 'pusher:pong', data: {} });
      });
      // The second ping only comes if the first pong was taken: a whole activity timeout later, still open.
      await raw.next((f) => f.event === 'pusher:ping' && raw.all('pusher:ping').length >= 2, 4000);
      assert.equal(raw.ws.readyState, raw.ws.OPEN);
      assert.equal(logLines(server, { event: 'connection_closed', reason: 'pong_timeout' }).length, 0);
      await raw.close();
    } finally {
      await server.close();
    }
  });

  test('every frame proves the client alive, refused ones too, and is counted in messages and bytes together', async () => {
    const server = await startServer({ ACTIVITY_TIMEOUT: '1', PONG_TIMEOUT_MS: '300' });
    try {
      // The silent client is the clock: once it was pinged and closed for it, the heartbeat swept past the timeout.
      const { client: silent } = await RawClient.established(server.port);
      const { client: active, socketId } = await RawClient.established(server.port);
      const frame = Buffer.alloc(10, 1);
      let sent = 0;
      // Pacing only (a frame every 100 ms, well inside the 1 s timeout); what the test waits on is the silent client's close.
      const pacer = setInterval(() => {
        active.ws.send(frame, { binary: true });
        sent++;
      }, 100);
      try {
        assert.equal((await silent.waitClosed(4000)).code, 4201);
      } finally {
        clearInterval(pacer);
      }
      assert.equal(active.all('pusher:ping').length, 0, 'a client sending frames (even refused binary ones) is not pinged');
      await until(() => active.all('pusher:error').length === sent, 'every binary frame answered');
      await active.close();
      const line = await loggedOnce(server, { event: 'connection_closed', socket_id: socketId });
      assert.equal(line.messages_in, sent);
      assert.equal(line.bytes_in, sent * frame.length);
    } finally {
      await server.close();
    }
  });

  test('pusher-js keeps a 1 s activity_timeout connection alive with its own pings', async () => {
    const server = await startServer({ ACTIVITY_TIMEOUT: '1', PONG_TIMEOUT_MS: '300' });
    try {
      const client = server.client();
      await connected(client);
      // pusher-js uses min(120 s, server's activity_timeout): it pings after 1 s of silence and the server answers.
      await nextEvent(client, 'pusher:pong', 3000);
      await nextEvent(client, 'pusher:pong', 3000);
      assert.equal(client.connection.state, 'connected');
      assert.equal(logLines(server, { event: 'connection_closed', reason: 'pong_timeout' }).length, 0);
    } finally {
      await server.close();
    }
  });
});

describe('TRUST_PROXY: the remote_address of connection lines', () => {
  /** Opens (and closes) one connection carrying `forwardedFor`; returns the remote_address of its connection_opened line. */
  async function remoteAddress(env: Record<string, string>, forwardedFor: string, path = `/app/${APP.key}?${PUSHER_QUERY}`): Promise<unknown> {
    const server = await startServer(env);
    try {
      const client = await RawClient.connect(server.port, path, { 'X-Forwarded-For': forwardedFor });
      const accepted = path.includes(APP.key);
      if (accepted) {
        await client.next('pusher:connection_established');
        await client.close();
      } else {
        await client.waitClosed();
      }
      const line = await loggedOnce(server, { event: accepted ? 'connection_opened' : 'connection_rejected' });
      return line.remote_address;
    } finally {
      await server.close();
    }
  }
  const hops = '203.0.113.7, 198.51.100.2';

  test('unset: the peer, whatever the header says', async () => {
    assert.equal(await remoteAddress({}, hops), '127.0.0.1');
  });
  test('the proxy listed (by name or address): the nearest hop it names', async () => {
    assert.equal(await remoteAddress({ TRUST_PROXY: 'loopback' }, hops), '198.51.100.2');
    assert.equal(await remoteAddress({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }, hops), '198.51.100.2');
  });
  test('true: the first hop; a refused upgrade is logged with it too', async () => {
    assert.equal(await remoteAddress({ TRUST_PROXY: 'true' }, hops), '203.0.113.7');
    assert.equal(await remoteAddress({ TRUST_PROXY: 'true' }, hops, `/app/no-such-key?${PUSHER_QUERY}`), '203.0.113.7');
  });
  test('a peer that is not a listed proxy cannot name the client', async () => {
    assert.equal(await remoteAddress({ TRUST_PROXY: '10.0.0.1' }, hops), '127.0.0.1');
  });
  test("the client's address a proxy names is cut past 64 characters, as the client's other words are", async () => {
    // A probe: a 12 000-character X-Forwarded-For made a 12.9 KB connection_opened line.
    assert.equal(await remoteAddress({ TRUST_PROXY: 'true' }, 'x'.repeat(12_000)), `${'x'.repeat(64)}…`);
  });
});
