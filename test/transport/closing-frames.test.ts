/**
 * Frames a client sends after the server began closing its connection are not acted on. ws goes on emitting them while
 * the close handshake runs (up to its 2 s bound for a client that never answers), and a user terminated with 4009 (or a
 * connection closed with 4200, 4201) kept publishing client events to the channel for those 2 s, each also a webhook.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { channelAuthString, sign, userAuthString } from '../../src/protocol/signatures.js';
import { PUSHER_QUERY, RawClient } from '../helpers/raw-client.js';
import { APP, startServer } from '../helpers/server.js';
import { signedFetch } from '../helpers/signed-fetch.js';
import { silentSocket } from '../helpers/silent-socket.js';
import { until, within } from '../helpers/wait.js';

/** A masked client text frame (mask key all zeros, so the payload goes as it is). */
function textFrame(frame: unknown): Buffer {
  const payload = Buffer.from(JSON.stringify(frame));
  const head = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 255]);
  return Buffer.concat([head, Buffer.alloc(4), payload]);
}

test('a client event sent after the server closed the connection (terminated, 4009) reaches nobody', async () => {
  const server = await startServer({ APP_ENABLE_CLIENT_EVENTS: 'true' });
  const { client: watcher, socketId: watcherId } = await RawClient.established(server.port);
  const raw = await silentSocket(server.port, `/app/${APP.key}?${PUSHER_QUERY}`);
  try {
    const channel = 'private-chat';
    watcher.send({ event: 'pusher:subscribe', data: { channel, auth: `${APP.key}:${sign(APP.secret, channelAuthString(watcherId, channel))}` } });
    await watcher.next((f) => f.event === 'pusher_internal:subscription_succeeded');
    await until(() => raw.received().includes('pusher:connection_established'), 'pusher:connection_established');
    const socketId = /socket_id\\?":\\?"(\d+\.\d+)/.exec(raw.received().toString('latin1'))?.[1];
    assert.ok(socketId !== undefined);
    const userData = JSON.stringify({ id: 'u1' });
    raw.socket.write(textFrame({ event: 'pusher:signin', data: { auth: `${APP.key}:${sign(APP.secret, userAuthString(socketId, userData))}`, user_data: userData } }));
    raw.socket.write(textFrame({ event: 'pusher:subscribe', data: { channel, auth: `${APP.key}:${sign(APP.secret, channelAuthString(socketId, channel))}` } }));
    await until(() => raw.received().includes('subscription_succeeded') && raw.received().includes('signin_success'), 'signed in and subscribed');
    const sending = { event: 'client-typing', channel, data: { n: 1 } };
    raw.socket.write(textFrame(sending));
    await watcher.next((f) => f.event === 'client-typing');

    const terminated = await signedFetch(server, 'POST', `/apps/${APP.id}/users/u1/terminate_connections`, { body: '{}' });
    assert.equal(terminated.status, 200);
    // The close frame (opcode 8) arrived; the client never answers it and goes on sending.
    await until(() => raw.received().includes(Buffer.from([0x88])), "the server's close frame");
    raw.socket.write(textFrame({ ...sending, data: { n: 2 } }));
    raw.socket.write(textFrame({ event: 'pusher:subscribe', data: { channel: 'late-public' } }));
    // Cut by the server at the close handshake's bound: every frame sent before was read by then.
    await within(raw.ended, 'the server to cut the silent socket', 5000);
    const marker = await signedFetch(server, 'POST', `/apps/${APP.id}/events`, { body: JSON.stringify({ name: 'marker', channel, data: '{}' }) });
    assert.equal(marker.status, 200);
    await watcher.next((f) => f.event === 'marker');
    assert.deepEqual(watcher.all('client-typing').map((f) => f.data), [{ n: 1 }]);
    assert.equal(server.app.hub.connectionCount(), 1, 'the watcher alone');
  } finally {
    raw.destroy();
    await watcher.close();
    await server.close();
  }
});
