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
import { APP, startServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { sign, userAuthString } from '../../src/protocol/signatures.js';

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

test('signing in again as the same user is answered again, and logged only the first time', async () => {
  // A probe: ~1 000 sign-ins as the same user in 5 s wrote 958 `signin` info lines for one connection.
  const server = await startServer();
  try {
    const { client, socketId } = await RawClient.established(server.port);
    const userData = JSON.stringify({ id: 'u-7' });
    const auth = `${APP.key}:${sign(APP.secret, userAuthString(socketId, userData))}`;
    const SIGNINS = 20;
    for (let i = 0; i < SIGNINS; i++) client.send({ event: 'pusher:signin', data: { auth, user_data: userData } });
    await until(() => client.all('pusher:signin_success').length === SIGNINS, `${SIGNINS} signin_success answers`);
    // A later frame's answer comes after every line the sign-ins wrote.
    client.send({ event: 'pusher:ping', data: {} });
    await client.next('pusher:pong');
    assert.equal(logLines(server, { event: 'signin' }).length, 1);
    await client.close();
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

test('user ids outside the channel-name characters (auth0|…, user:42, spaces, non-ASCII) get their user channel and events', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    for (const id of ['auth0|5f7c8ec7', 'google-oauth2|1234', 'user:42', 'a b', 'ü']) {
      const client = server.client(authOptions(sdk, { user: { id } }));
      // pusher-js subscribes to `#server-to-user-${id}` on signin_success: refused (400 InvalidChannel) before.
      await signedIn(client);
      assert.equal(client.user.serverToUserChannel.name, `#server-to-user-${id}`);
      const received = nextEvent(client.user, 'notice');
      const response = await sdk.sendToUser(id, 'notice', { for: id });
      assert.equal(response.status, 200, id);
      assert.deepEqual(await received, { for: id });
      // /batch_events takes the same channel (an SDK trigger names it explicitly).
      const batched = nextEvent(client.user, 'batched');
      const batch = await sdk.triggerBatch([{ channel: `#server-to-user-${id}`, name: 'batched', data: { n: 1 } }]);
      assert.equal(batch.status, 200, id);
      assert.deepEqual(await batched, { n: 1 });
      client.disconnect();
    }
    assert.equal(logLines(server, { event: 'subscription_failed' }).length, 0);
  } finally {
    await server.close();
  }
});

test('a connection signed in as u1 that signs in as u2 is refused (4009) and stays u1: sendToUser and terminate follow u1', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    const { client: raw, socketId } = await RawClient.established(server.port);
    const signinFrame = (user: unknown) => {
      const userData = JSON.stringify(user);
      return { event: 'pusher:signin', data: { auth: `${APP.key}:${sign(APP.secret, userAuthString(socketId, userData))}`, user_data: userData } };
    };
    raw.send(signinFrame({ id: 'u1' }));
    await raw.next('pusher:signin_success');
    raw.send({ event: 'pusher:subscribe', data: { channel: '#server-to-user-u1', auth: '' } });
    await raw.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === '#server-to-user-u1');

    raw.send(signinFrame({ id: 'u2' }));
    const refused = await raw.next('pusher:error');
    assert.deepEqual(refused.data, { message: 'Already signed in as another user', code: 4009 });
    assert.equal(raw.all('pusher:signin_success').length, 1);
    raw.send({ event: 'pusher:subscribe', data: { channel: '#server-to-user-u2', auth: '' } });
    const notU2 = await raw.next('pusher:subscription_error');
    assert.equal((notU2.data as { status: number }).status, 401);
    assert.equal(server.app.hub.userConnections(APP.id, 'u2').size, 0);
    const line = await loggedOnce(server, { event: 'message_rejected', reason: 'unauthorized' });
    assert.equal(line.code, 4009);

    // Nothing for u2 reaches it; u1's events do, and terminating u1 closes it.
    await sdk.sendToUser('u2', 'for-u2', {});
    await sdk.sendToUser('u1', 'for-u1', {});
    await raw.next((f) => f.event === 'for-u1');
    assert.equal(raw.all('for-u2').length, 0);
    await sdk.terminateUserConnections('u1');
    assert.equal((await raw.waitClosed()).code, 4009);
  } finally {
    await server.close();
  }
});

test('pusher-js signing in again as the same user keeps working', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    const client = server.client(authOptions(sdk, { user: { id: 'same' } }));
    await signedIn(client);
    client.signin();
    const received = nextEvent(client.user, 'notice');
    await sdk.sendToUser('same', 'notice', { ok: 1 });
    assert.deepEqual(await received, { ok: 1 });
    assert.equal(client.connection.state, 'connected');
    assert.equal(logLines(server, { event: 'message_rejected' }).length, 0);
  } finally {
    await server.close();
  }
});
