/**
 * A close the client starts and never finishes: its close frame sent, its side of the TCP connection never ended. ws
 * answers the close frame, ends the server's side and would hold the socket for its 30 s closeTimeout waiting for the
 * client's end, the connection counted against MAX_CONNECTIONS all the while. The server cuts it within the close
 * handshake bound (ws's closeTimeout set to CLOSE_HANDSHAKE_MS, app.ts) and records the client's close.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sign, userAuthString } from '../../src/protocol/signatures.js';
import { loggedOnce } from '../helpers/logs.js';
import { PUSHER_QUERY, RawClient } from '../helpers/raw-client.js';
import { APP, openSockets, startServer } from '../helpers/server.js';
import { signedFetch } from '../helpers/signed-fetch.js';
import { silentSocket } from '../helpers/silent-socket.js';
import { eventually, until, within } from '../helpers/wait.js';


/** A masked client close frame (the mask key all zeros) with code 1000. */
const CLOSE_1000 = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);

test('a client that sends its close frame and never ends its socket is cut within the close handshake bound', async () => {
  const server = await startServer({ MAX_CONNECTIONS: '1' });
  const raw = await silentSocket(server.port, `/app/${APP.key}?${PUSHER_QUERY}`);
  try {
    await until(() => raw.received().includes('pusher:connection_established'), 'pusher:connection_established');
    assert.equal(server.app.hub.connectionCount(), 1);
    // The server's end must not make ours: a client that never ends its side.
    raw.socket.allowHalfOpen = true;
    const serverEnded = new Promise<void>((resolve) => raw.socket.once('end', () => resolve()));
    const sentAt = Date.now();
    raw.socket.write(CLOSE_1000);
    // ws answers with its close frame and ends the server's side at once; only the socket stays.
    await within(serverEnded, "the server's close frame and end");
    assert.equal(server.app.hub.connectionCount(), 1, 'counted while the close handshake may still finish');

    await until(() => server.app.hub.connectionCount() === 0, 'the connection to be released', 5000);
    const elapsed = Date.now() - sentAt;
    assert.ok(elapsed >= 1500 && elapsed < 5000, `released ${elapsed} ms after the close frame`);
    await eventually(async () => (await openSockets(server)) === 0, 'the server to hold no socket', 1000);
    // Recorded as the client's close, with its code, as when the client ends its socket itself.
    const closed = await loggedOnce(server, { event: 'connection_closed' });
    assert.equal(closed.reason, 'client_close');
    assert.equal(closed.code, 1000);
    // Its MAX_CONNECTIONS slot is free again.
    const { client } = await RawClient.established(server.port);
    await client.close();
  } finally {
    raw.destroy();
    await server.close();
  }
});

test("a server close while the client's close frame is in: the client's close is recorded, with its code", async () => {
  const server = await startServer();
  const raw = await silentSocket(server.port, `/app/${APP.key}?${PUSHER_QUERY}`);
  try {
    await until(() => raw.received().includes('pusher:connection_established'), 'pusher:connection_established');
    const socketId = /socket_id\\?":\\?"(\d+\.\d+)/.exec(raw.received().toString('latin1'))?.[1];
    assert.ok(socketId !== undefined);
    const userData = JSON.stringify({ id: 'u1' });
    const signin = Buffer.from(JSON.stringify({ event: 'pusher:signin', data: { auth: `${APP.key}:${sign(APP.secret, userAuthString(socketId, userData))}`, user_data: userData } }));
    // A masked text frame with a 16-bit length, the mask key all zeros.
    raw.socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | 126, signin.length >> 8, signin.length & 255, 0, 0, 0, 0]), signin]));
    await until(() => raw.received().includes('signin_success'), 'signed in');
    raw.socket.allowHalfOpen = true;
    const serverEnded = new Promise<void>((resolve) => raw.socket.once('end', () => resolve()));
    raw.socket.write(CLOSE_1000);
    await within(serverEnded, "the server's close frame and end");
    // The server decides to close it (terminated, 4009) before the socket is gone: the wire carried the client's 1000.
    const terminated = await signedFetch(server, 'POST', `/apps/${APP.id}/users/u1/terminate_connections`, { body: '{}' });
    assert.equal(terminated.status, 200);
    raw.socket.end();
    await until(() => server.app.hub.connectionCount() === 0, 'the connection to be released', 5000);
    const closed = await loggedOnce(server, { event: 'connection_closed' });
    assert.equal(closed.reason, 'client_close');
    assert.equal(closed.code, 1000);
  } finally {
    raw.destroy();
    await server.close();
  }
});
