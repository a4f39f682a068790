/**
 * Refused WebSocket upgrades (src/transport/ws-route.ts, `reject`) whose client never answers the close frame: the server
 * cuts each one after the 2 s close handshake bound (not ws's 30 s), and holds at most MAX_REFUSED_SOCKETS of them at once.
 * Counted on the server side: the HTTP server's open TCP connections (each holds one fd).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Adapter } from '../../src/adapters/adapter.js';
import { createLocalAdapter } from '../../src/adapters/local-adapter.js';
import { PUSHER_QUERY } from '../helpers/raw-client.js';
import { APP, openSockets, startServer } from '../helpers/server.js';
import { silentSocket, type SilentSocket } from '../helpers/silent-socket.js';
import { eventually, until, within } from '../helpers/wait.js';


test('refused sockets that never answer the close frame are cut after the 2 s handshake bound', async () => {
  const server = await startServer();
  const sockets: SilentSocket[] = [];
  try {
    for (let i = 0; i < 40; i++) sockets.push(await silentSocket(server.port, '/app/no-such-key?protocol=7'));
    for (const s of sockets) assert.match(s.received().toString('latin1'), /^HTTP\/1\.1 101 /);
    assert.equal(await openSockets(server), 40);
    const openedAt = Date.now();
    await within(Promise.all(sockets.map((s) => s.ended)), 'the server to cut every refused socket', 4000);
    assert.ok(Date.now() - openedAt >= 1500, 'each socket had its close handshake time first');
    // The server sees the close a moment after the client does: re-check, bounded.
    await eventually(async () => (await openSockets(server)) === 0, 'the server to count no open socket', 1000);
    // Each got the protocol's answer first: pusher:error 4001 and a close frame with that code.
    for (const s of sockets) assert.match(s.received().toString('latin1'), /"code":4001/);
  } finally {
    for (const s of sockets) s.destroy();
    await server.close();
  }
});

test('past MAX_REFUSED_SOCKETS a refused socket is cut at once, after the refusal', async () => {
  const server = await startServer({ MAX_REFUSED_SOCKETS: '5' });
  const sockets: SilentSocket[] = [];
  try {
    for (let i = 0; i < 20; i++) sockets.push(await silentSocket(server.port, '/app/no-such-key?protocol=7'));
    let ended = 0;
    for (const s of sockets) void s.ended.then(() => ended++);
    await until(() => ended >= 15, 'the refused sockets past the cap to be cut', 1000);
    assert.ok((await openSockets(server)) <= 5, 'at most the cap is held');
    // Each cut one got the refusal first, pusher:error 4001 and the close frame with that code: cut without them, a
    // client saw 1006 and pusher-js reconnected at once instead of backing off (a probe: 672 of 4 473 refusals).
    for (const s of sockets) {
      const text = s.received().toString('latin1');
      assert.match(text, /"code":4001/);
      assert.ok(s.received().includes(Buffer.from([0x88])), 'a close frame');
    }
  } finally {
    for (const s of sockets) s.destroy();
    await server.close();
  }
});

test('an upgrade whose client left while its quota was counted takes no place among the refused sockets held', async () => {
  // reject() counted the socket among those waiting for a close frame, and waited for a `close` ws had emitted already:
  // its place was never given back. Past MAX_REFUSED_SOCKETS of them (a Redis outage with clients dropping), every later
  // refusal was cut at once, until the process restarted.
  let answer: (ok: boolean) => void = () => undefined;
  const server = await startServer({ APP_MAX_CONNECTIONS: '5', MAX_REFUSED_SOCKETS: '1' }, {
    adapter: (_hub, metrics) => {
      const local = createLocalAdapter({ metrics, cacheTtlMs: 60_000, cacheMaxBytes: 1 << 20 });
      const wrapped: Adapter = Object.create(local) as Adapter;
      wrapped.reserveConnection = () => new Promise<boolean>((resolve) => (answer = resolve));
      return wrapped;
    },
  });
  const sockets: SilentSocket[] = [];
  try {
    const gone = await silentSocket(server.port, `/app/${APP.key}?${PUSHER_QUERY}`);
    sockets.push(gone);
    gone.destroy();
    await eventually(async () => (await openSockets(server)) === 0, 'the server to see the client gone', 2000);
    answer(false);
    // A refusal after it waits for its client's close frame, as the first refused socket held may.
    const refused = await silentSocket(server.port, '/app/no-such-key?protocol=7');
    sockets.push(refused);
    await until(() => refused.received().includes(Buffer.from([0x88])), 'the refusal and its close frame');
    assert.equal(await openSockets(server), 1, 'held for its close handshake, not cut at once');
  } finally {
    for (const s of sockets) s.destroy();
    await server.close();
  }
});
