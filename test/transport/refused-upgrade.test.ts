/**
 * Refused WebSocket upgrades (src/transport/ws-route.ts, `reject`) whose client never answers the close frame: the server
 * cuts each one after the 2 s close handshake bound (not ws's 30 s), and holds at most MAX_REFUSED_SOCKETS of them at once.
 * Counted on the server side: the HTTP server's open TCP connections (each holds one fd).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openSockets, startServer } from '../helpers/server.js';
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
