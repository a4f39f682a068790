/**
 * Compatibility with the clients and backends people already run (docs/protocol-compatibility.md): pusher-js 7 authorizers
 * answering `channel_data: null`, malformed subscribes answered on their channel, integer user ids (sign-in and presence),
 * a subscription authorizing the connection for APP_USER_AUTHENTICATION_REQUIRED, the dataless `pusher:cache_miss`, the
 * catch-all 404 with CORS, and client-event refusals with a code and the channel. Real pusher-js where the behaviour is the
 * client's, the frame-level client where the exact frame is the point.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authOptions } from '../helpers/auth.js';
import { connected, nextEvent, subscribed } from '../helpers/pusher-events.js';
import type { PresenceChannel } from '../helpers/pusher-js.js';
import { RawClient, type Frame } from '../helpers/raw-client.js';
import { APP, startServer } from '../helpers/server.js';
import { channelAuthString, sign, userAuthString } from '../../src/protocol/signatures.js';

/** `auth` for a private/presence subscription, signed as the backend would. */
function channelAuth(socketId: string, channel: string, channelData?: string): string {
  return `${APP.key}:${sign(APP.secret, channelAuthString(socketId, channel, channelData))}`;
}

test('an authorizer answering channel_data: null subscribes a private channel (as pusher-js 7 setups send it)', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    const client = server.client({
      channelAuthorization: {
        endpoint: '/unused',
        transport: 'ajax',
        // What a backend serialising `{auth, channel_data: null}` for a private channel answers.
        customHandler: ({ socketId, channelName }, callback) =>
          callback(null, { ...sdk.authorizeChannel(socketId, channelName), channel_data: null as unknown as string }),
      },
    });
    const channel = await subscribed(client, 'private-orders');
    const got = nextEvent(channel, 'created');
    await sdk.trigger('private-orders', 'created', { id: 1 });
    assert.deepEqual(await got, { id: 1 });
  } finally {
    await server.close();
  }
});

test('every refused subscribe whose channel can be read answers pusher:subscription_error on that channel', async () => {
  const server = await startServer();
  try {
    const { client, socketId } = await RawClient.established(server.port);
    const errorOn = (channel: string) => (f: Frame) => f.event === 'pusher:subscription_error' && f.channel === channel;
    // Absent channel_data on a presence channel (null is absent): refused like any presence subscribe without it.
    client.send({ event: 'pusher:subscribe', data: { channel: 'presence-a', auth: channelAuth(socketId, 'presence-a'), channel_data: null } });
    // Fields of the wrong type: refused on the channel, not with a channel-less pusher:error.
    client.send({ event: 'pusher:subscribe', data: { channel: 'private-b', auth: 5 } });
    client.send({ event: 'pusher:subscribe', data: { channel: 'presence-c', auth: 'k:s', channel_data: { user_id: 1 } } });
    for (const channel of ['presence-a', 'private-b', 'presence-c']) {
      const refused = await client.next(errorOn(channel));
      const data = refused.data as { type: string; error: string; status: number };
      assert.equal(data.status, 400, channel);
      assert.equal(typeof data.error, 'string');
    }
    assert.deepEqual(client.all('pusher:error'), [], 'no channel-less pusher:error for them');
    // A subscribe without any readable channel still gets pusher:error: there is no channel to answer on.
    client.send({ event: 'pusher:subscribe', data: { channel: 7 } });
    await client.next('pusher:error');
    await client.close();
  } finally {
    await server.close();
  }
});

test('integer user ids: sign-in with {"id":1} is accepted; presence echoes the id as the backend signed it', async () => {
  const server = await startServer({ APP_ENABLE_CLIENT_EVENTS: 'true' });
  try {
    const sdk = server.sdk();
    // Signed as PHP's SDK does for Laravel's integer ids (the Node SDK refuses a non-string id, so it is signed here).
    // Frame level: pusher-js itself drops a sign-in whose id is not a string (docs/protocol-compatibility.md).
    const { client: one, socketId: oneSocket } = await RawClient.established(server.port);
    const userData = JSON.stringify({ id: 1, user_info: { name: 'One' } });
    one.send({ event: 'pusher:signin', data: { auth: `${APP.key}:${sign(APP.secret, userAuthString(oneSocket, userData))}`, user_data: userData } });
    const success = await one.next('pusher:signin_success');
    assert.deepEqual(success.data, { user_data: userData }, 'user_data echoed exactly as signed');
    one.send({ event: 'pusher:subscribe', data: { channel: '#server-to-user-1', auth: '' } });
    await one.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === '#server-to-user-1');
    await sdk.sendToUser('1', 'notice', { hello: 1 });
    assert.deepEqual((await one.next('notice')).data, { hello: 1 });
    await one.close();

    // Presence: user 7 is in the room; user 8 joins; 7 hears member_added with the number 8, then 8's client event.
    const { client: seven, socketId } = await RawClient.established(server.port);
    const data7 = JSON.stringify({ user_id: 7, user_info: { name: 'Seven' } });
    seven.send({ event: 'pusher:subscribe', data: { channel: 'presence-ints', auth: channelAuth(socketId, 'presence-ints', data7), channel_data: data7 } });
    const succeeded = await seven.next('pusher_internal:subscription_succeeded');
    assert.deepEqual((succeeded.data as { presence: { hash: unknown } }).presence.hash, { 7: { name: 'Seven' } });
    const eight = server.client(authOptions(sdk, { presence: { user_id: 8 as unknown as string, user_info: { name: 'Eight' } } }));
    const room = await subscribed<PresenceChannel>(eight, 'presence-ints');
    const added = await seven.next('pusher_internal:member_added');
    assert.deepEqual(added.data, { user_id: 8, user_info: { name: 'Eight' } });
    assert.equal(room.members.me?.id, 8, 'pusher-js: me is the member it signed');
    assert.equal(room.members.get('7')?.info.name, 'Seven');
    room.trigger('client-wave', {});
    const wave = await seven.next('client-wave');
    assert.equal(wave.user_id, '8', 'the client-event envelope carries user_id as a string, as the protocol documents');
    eight.disconnect();
    const removed = await seven.next('pusher_internal:member_removed');
    assert.deepEqual(removed.data, { user_id: 8 });
    await seven.close();
  } finally {
    await server.close();
  }
});

test('user authentication required: a connection subscribed to a private channel counts as authorized (no 4009)', async () => {
  const server = await startServer({ APP_USER_AUTHENTICATION_REQUIRED: 'true', USER_AUTH_TIMEOUT_MS: '300' });
  try {
    const authorized = server.client(authOptions(server.sdk()));
    await subscribed(authorized, 'private-desk');
    // Opened after the authorized one: once it is closed with 4009, the authorized one's deadline has passed too.
    const silent = await RawClient.established(server.port);
    assert.equal((await silent.client.waitClosed(5000)).code, 4009);
    assert.equal(authorized.connection.state, 'connected');
    const still = nextEvent(authorized.channel('private-desk') ?? authorized.subscribe('private-desk'), 'ping');
    await server.sdk().trigger('private-desk', 'ping', { n: 1 });
    assert.deepEqual(await still, { n: 1 });
  } finally {
    await server.close();
  }
});

test('pusher:cache_miss carries no data field', async () => {
  const server = await startServer();
  try {
    const { client } = await RawClient.established(server.port);
    client.send({ event: 'pusher:subscribe', data: { channel: 'cache-empty' } });
    const miss = await client.next('pusher:cache_miss');
    assert.equal(miss.channel, 'cache-empty');
    assert.equal(miss.raw, undefined, 'no "data" key on the wire (JSON has no undefined)');
    await client.close();
  } finally {
    await server.close();
  }
});

test('the catch-all 404 carries the API CORS headers, and its preflight is answered', async () => {
  const server = await startServer();
  try {
    const origin = 'http://backend.example.test';
    for (const [method, path] of [
      ['GET', '/nope'],
      ['POST', '/nope'],
      ['GET', `/apps/${APP.id}/no-such-route`],
    ] as const) {
      const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method, headers: { origin } });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(res.headers.get('access-control-allow-origin'), origin, `${method} ${path}`);
      assert.deepEqual(await res.json(), { error: 'Not found' });
    }
    const preflight = await fetch(`http://127.0.0.1:${server.port}/nope`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-socket-id' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), origin);
    // The API's own answers keep theirs.
    const api = await fetch(`http://127.0.0.1:${server.port}/apps/${APP.id}/channels`, { headers: { origin } });
    assert.equal(api.status, 401);
    assert.equal(api.headers.get('access-control-allow-origin'), origin);
  } finally {
    await server.close();
  }
});

test('a plain OPTIONS (no Origin, or no Access-Control-Request-Method) is answered 204 with what the path allows, on every path', async () => {
  // Not a browser's preflight but an HTTP client asking what a resource allows: no error. @fastify/cors's strict default
  // answered it with a text/plain 400 outside the error registry.
  const server = await startServer();
  try {
    for (const path of [`/apps/${APP.id}/events`, '/nope', `/app/${APP.key}`]) {
      for (const headers of [{}, { origin: 'http://backend.example.test' }] as Record<string, string>[]) {
        const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method: 'OPTIONS', headers });
        const what = `OPTIONS ${path} ${JSON.stringify(headers)}`;
        assert.equal(res.status, 204, what);
        assert.equal(res.headers.get('access-control-allow-methods'), 'GET, POST, OPTIONS', what);
        assert.equal(await res.text(), '', what);
      }
    }
  } finally {
    await server.close();
  }
});

test('refused client events answer pusher:error with their own code and the channel', async () => {
  const disabled = await startServer();
  try {
    const { client, socketId } = await RawClient.established(disabled.port);
    client.send({ event: 'pusher:subscribe', data: { channel: 'private-x', auth: channelAuth(socketId, 'private-x') } });
    await client.next('pusher_internal:subscription_succeeded');
    client.send({ event: 'client-hi', channel: 'private-x', data: {} });
    const error = await client.next('pusher:error');
    assert.equal(error.channel, 'private-x');
    assert.equal((error.data as { code: number }).code, 4310);
    await client.close();
  } finally {
    await disabled.close();
  }

  const server = await startServer({ APP_ENABLE_CLIENT_EVENTS: 'true', MAX_EVENT_NAME_LENGTH: '20', MAX_PAYLOAD_BYTES: '1024' });
  try {
    const { client, socketId } = await RawClient.established(server.port);
    client.send({ event: 'pusher:subscribe', data: { channel: 'news' } });
    client.send({ event: 'pusher:subscribe', data: { channel: 'private-x', auth: channelAuth(socketId, 'private-x') } });
    await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === 'private-x');
    const cases: [frame: object, channel: string, code: number][] = [
      [{ event: 'client-hi', channel: 'news', data: {} }, 'news', 4311],
      [{ event: 'client-hi', channel: 'private-elsewhere', data: {} }, 'private-elsewhere', 4312],
      [{ event: `client-${'n'.repeat(30)}`, channel: 'private-x', data: {} }, 'private-x', 4313],
      // Data over MAX_PAYLOAD_BYTES in a frame under the socket layer's hard limit (twice that).
      [{ event: 'client-big', channel: 'private-x', data: 'x'.repeat(1100) }, 'private-x', 4314],
    ];
    for (const [frame, channel, code] of cases) {
      const before = client.all('pusher:error').length;
      client.send(frame);
      const error = await client.next(() => client.all('pusher:error').length > before).then(() => client.all('pusher:error')[before]);
      assert.equal(error?.channel, channel, `${code}: ${JSON.stringify(client.all('pusher:error'))}`);
      assert.equal((error?.data as { code: number }).code, code);
    }
    await client.close();
  } finally {
    await server.close();
  }
});

test('pusher-js sees a refused client event on its channel object', async () => {
  const server = await startServer();
  try {
    const client = server.client(authOptions(server.sdk()));
    await connected(client);
    const channel = await subscribed(client, 'private-y');
    const refused = nextEvent<{ code: number }>(channel, 'pusher:error');
    channel.trigger('client-hi', {});
    assert.equal((await refused).code, 4310);
  } finally {
    await server.close();
  }
});
