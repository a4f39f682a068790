/**
 * User authentication with pusher-js `signin()` (userAuthentication customHandler signing with the SDK's authenticateUser):
 * signin_success, `#server-to-user-{id}` delivery of the SDK's sendToUser to every connection of that user (and only that
 * user), and a bad signin signature answered with pusher:error and logged once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authOptions } from '../helpers/auth.js';
import { loggedOnce, logLines } from '../helpers/logs.js';
import { connected, nextEvent, signedIn } from '../helpers/pusher-events.js';
import { RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/server.js';

test('signin(): the server accepts the SDK-signed user and pusher-js holds its user_data', async () => {
  const server = await startServer();
  try {
    const client = server.client(authOptions(server.sdk(), { user: { id: 'u-42', user_info: { name: 'Ada' } } }));
    await signedIn(client);
    assert.deepEqual(client.user.user_data, { id: 'u-42', user_info: { name: 'Ada' } });
    assert.equal(client.user.serverToUserChannel.name, '#server-to-user-u-42');
    const line = await loggedOnce(server, { event: 'signin' });
    assert.equal(line.user_id, 'u-42');
  } finally {
    await server.close();
  }
});

test('sendToUser: every connection of that user receives it through pusher.user.bind, other users do not', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    const tabs = [1, 2].map(() => server.client(authOptions(sdk, { user: { id: 'u-1' } })));
    const other = server.client(authOptions(sdk, { user: { id: 'u-2' } }));
    for (const c of [...tabs, other]) await signedIn(c);
    const otherGot: unknown[] = [];
    other.user.bind('notice', (d: unknown) => otherGot.push(d));

    const received = Promise.all(tabs.map((c) => nextEvent(c.user, 'notice')));
    const response = await sdk.sendToUser('u-1', 'notice', { text: 'for you' });
    assert.equal(response.status, 200);
    assert.deepEqual(await received, [{ text: 'for you' }, { text: 'for you' }]);

    // A later event for u-2 arrives after anything u-1's event could have sent it.
    const marker = nextEvent(other.user, 'marker');
    await sdk.sendToUser('u-2', 'marker', {});
    await marker;
    assert.deepEqual(otherGot, []);
  } finally {
    await server.close();
  }
});

test('a #server-to-user- channel cannot be subscribed without signing in as that user', async () => {
  const server = await startServer();
  try {
    const { client: raw } = await RawClient.established(server.port);
    raw.send({ event: 'pusher:subscribe', data: { channel: '#server-to-user-u-1', auth: '' } });
    const error = await raw.next('pusher:subscription_error');
    assert.equal((error.data as { status: number }).status, 401);
    assert.equal(error.channel, '#server-to-user-u-1');
    await loggedOnce(server, { event: 'auth_failed', channel: '#server-to-user-u-1' });
    await raw.close();
  } finally {
    await server.close();
  }
});

test('bad signin signature: pusher:error 4009, not signed in, one log line', async () => {
  const server = await startServer();
  try {
    const client = server.client(authOptions(server.sdk({ secret: 'not-the-secret' }), { user: { id: 'mallory' } }));
    await connected(client);
    const error = nextEvent<{ message: string; code: number }>(client, 'pusher:error');
    client.signin();
    const refused = await error;
    assert.equal(refused.code, 4009);
    assert.match(refused.message, /signin/i);
    assert.equal(client.user.user_data, null);
    assert.equal(server.app.hub.userConnections('app-id', 'mallory').size, 0);
    // The connection stays open and usable.
    assert.equal(client.connection.state, 'connected');
    const line = await loggedOnce(server, { event: 'auth_failed' });
    assert.equal(line.reason, 'unauthorized');
    assert.equal(line.code, 4009);
    assert.equal(logLines(server, { event: 'message_rejected' }).length, 0, 'one rejection, one log line');
  } finally {
    await server.close();
  }
});
