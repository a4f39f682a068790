/**
 * Every HTTP API route with the real `pusher` SDK against real pusher-js subscribers, and each error answer: 400 (reason in
 * the body), 401 (bad signature, wrong key, stale timestamp, body_md5 mismatch — raw signed requests), 403 (disabled app),
 * 413 (data over MAX_PAYLOAD_BYTES), and batches over MAX_BATCH_SIZE.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authOptions } from '../helpers/auth.js';
import { loggedOnce, logLines } from '../helpers/logs.js';
import { connected, names, nextEvent, record, signedIn, subscribed } from '../helpers/pusher-events.js';
import type { Channel } from '../helpers/pusher-js.js';
import { APP, startServer, startServerWithApps, type TestServer } from '../helpers/server.js';
import { sdkFailure, signedFetch } from '../helpers/signed-fetch.js';
import { until } from '../helpers/wait.js';

const EVENTS = `/apps/${APP.id}/events`;

async function json(response: { json(): Promise<unknown> }): Promise<unknown> {
  return response.json();
}

/** A second SDK-triggered event every channel must receive: everything published before it was delivered. */
async function barrier(server: TestServer, name: string, channels: Channel[]): Promise<void> {
  const arrived = channels.map((c) => nextEvent(c, 'marker'));
  await server.sdk().trigger(name, 'marker', {});
  await Promise.all(arrived);
}

test('POST /events: one trigger to several channels reaches each', async () => {
  const server = await startServer();
  try {
    const client = server.client();
    const a = await subscribed(client, 'alpha');
    const b = await subscribed(client, 'beta');
    const gotA = nextEvent(a, 'ev');
    const gotB = nextEvent(b, 'ev');
    const response = await server.sdk().trigger(['alpha', 'beta'], 'ev', { x: 1 });
    assert.equal(response.status, 200);
    assert.deepEqual(await json(response), {});
    assert.deepEqual(await gotA, { x: 1 });
    assert.deepEqual(await gotB, { x: 1 });
  } finally {
    await server.close();
  }
});

test('POST /events with info: user_count (presence only) and subscription_count per channel', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    // One user in two tabs: one user, two subscriptions.
    await subscribed(server.client(authOptions(sdk, { presence: { user_id: 'u1' } })), 'presence-team');
    await subscribed(server.client(authOptions(sdk, { presence: { user_id: 'u1' } })), 'presence-team');
    await subscribed(server.client(), 'board');
    const response = await sdk.trigger(['presence-team', 'board'], 'ev', {}, { info: 'user_count,subscription_count' });
    assert.deepEqual(await json(response), {
      channels: {
        'presence-team': { user_count: 1, subscription_count: 2 },
        board: { subscription_count: 1 },
      },
    });
  } finally {
    await server.close();
  }
});

test('POST /events with socket_id: that connection is excluded, the others receive', async () => {
  const server = await startServer();
  try {
    const senderClient = server.client();
    const sender = await subscribed(senderClient, 'room');
    const other = await subscribed(server.client(), 'room');
    const senderEvents = record(sender);
    const socketId = await connected(senderClient);
    const got = nextEvent(other, 'echo');
    await server.sdk().trigger('room', 'echo', { from: 'backend' }, { socket_id: socketId });
    assert.deepEqual(await got, { from: 'backend' });
    await barrier(server, 'room', [sender, other]);
    assert.ok(names(senderEvents).includes('marker'));
    assert.ok(!names(senderEvents).includes('echo'), 'the socket_id connection must not receive the event');
  } finally {
    await server.close();
  }
});

test('POST /batch_events: every event delivered in order; info answers per item', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    const one = await subscribed(server.client(), 'one');
    const two = await subscribed(server.client(), 'two');
    const oneEvents: unknown[] = [];
    one.bind('n', (d: unknown) => oneEvents.push(d));
    const gotTwo = nextEvent(two, 'm');
    const response = await sdk.triggerBatch([
      { channel: 'one', name: 'n', data: { i: 1 } },
      { channel: 'two', name: 'm', data: { i: 2 } },
      { channel: 'one', name: 'n', data: { i: 3 } },
    ]);
    assert.deepEqual(await json(response), {});
    assert.deepEqual(await gotTwo, { i: 2 });
    await barrier(server, 'one', [one]);
    assert.deepEqual(oneEvents, [{ i: 1 }, { i: 3 }]);

    const withInfo = await sdk.triggerBatch([
      { channel: 'one', name: 'n', data: {}, info: 'subscription_count' },
      { channel: 'empty', name: 'n', data: {}, info: 'subscription_count' },
    ]);
    assert.deepEqual(await json(withInfo), { batch: [{ subscription_count: 1 }, { subscription_count: 0 }] });
  } finally {
    await server.close();
  }
});

test('POST /batch_events: a full batch of the largest events is accepted however its data is escaped in JSON', async () => {
  // 10 events of 20 000 bytes each: written in JSON, a `"` takes two bytes and a control character six, so the body
  // (~400 KB and ~1.2 MB) is far over data × batch (200 000 bytes) and was refused 413 before its data was read.
  const server = await startServer({ MAX_PAYLOAD_BYTES: '20000' });
  try {
    const channel = await subscribed(server.client(), 'escaped');
    for (const char of ['"', '\u0001']) {
      const data = char.repeat(20_000);
      const received: unknown[] = [];
      channel.bind('e', (d: unknown) => received.push(d));
      const response = await server.sdk().triggerBatch(Array.from({ length: 10 }, () => ({ channel: 'escaped', name: 'e', data })));
      assert.equal(response.status, 200);
      await barrier(server, 'escaped', [channel]);
      channel.unbind('e');
      assert.equal(received.length, 10);
      assert.ok(received.every((d) => d === data));
    }
  } finally {
    await server.close();
  }
});

test('POST /batch_events: a full batch with the longest names, every string escaped, is accepted', async () => {
  // 100 events, each data 1 024 control characters (6 144 bytes escaped) and a name of 100 emoji escaped as surrogate
  // pairs (1 200 bytes): ~760 KB of a body the limit took for data × batch × 6 + 64 KiB (679 936 bytes), refused 413
  // (the review of stop 54). Sent raw: the SDK writes names and data with JSON.stringify, which escapes neither.
  const server = await startServer({ MAX_PAYLOAD_BYTES: '1024', MAX_BATCH_SIZE: '100' });
  try {
    const channel = await subscribed(server.client(), 'long');
    const received: unknown[] = [];
    const name = '\u{1F600}'.repeat(100);
    channel.bind(name, (d: unknown) => received.push(d));
    const item = `{"channel":"long","name":"${'\\ud83d\\ude00'.repeat(100)}","data":"${'\\u0001'.repeat(1024)}"}`;
    const body = `{"batch":[${Array.from({ length: 100 }, () => item).join(',')}]}`;
    assert.ok(body.length > 1024 * 100 * 6 + 64 * 1024);
    const answer = await signedFetch(server, 'POST', `/apps/${APP.id}/batch_events`, { body });
    assert.equal(answer.status, 200);
    await barrier(server, 'long', [channel]);
    assert.equal(received.length, 100);
    assert.equal(received[0], '\u0001'.repeat(1024));
  } finally {
    await server.close();
  }
});

test('POST /batch_events over MAX_BATCH_SIZE: 400 and nothing of it is published', async () => {
  const server = await startServer({ MAX_BATCH_SIZE: '2' });
  try {
    const channel = await subscribed(server.client(), 'batch');
    const events = record(channel);
    const failure = await sdkFailure(
      server.sdk().triggerBatch([1, 2, 3].map((i) => ({ channel: 'batch', name: 'b', data: { i } }))),
    );
    assert.equal(failure.status, 400);
    assert.match((failure.body as { error: string }).error, /over the limit of 2/);
    await barrier(server, 'batch', [channel]);
    assert.ok(!names(events).includes('b'));
    await loggedOnce(server, { event: 'api_request', route: '/apps/:appId/batch_events', status_code: 400 });
  } finally {
    await server.close();
  }
});

test('POST /batch_events with one bad item: 400 and the good items are not published either', async () => {
  const server = await startServer();
  try {
    const channel = await subscribed(server.client(), 'batch');
    const events = record(channel);
    const failure = await sdkFailure(
      server.sdk().triggerBatch([
        { channel: 'batch', name: 'ok', data: {} },
        { channel: 'bad channel!', name: 'ok', data: {} },
      ]),
    );
    assert.equal(failure.status, 400);
    await barrier(server, 'batch', [channel]);
    assert.ok(!names(events).includes('ok'));
  } finally {
    await server.close();
  }
});

test('GET /channels: all occupied channels, filter_by_prefix, info=user_count for presence- only', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    const client = server.client(authOptions(sdk, { presence: { user_id: 'u1' } }));
    await subscribed(client, 'presence-a');
    await subscribed(client, 'private-b');
    await subscribed(client, 'public-c');
    await subscribed(server.client(authOptions(sdk, { presence: { user_id: 'u2' } })), 'presence-a');

    assert.deepEqual(await json(await sdk.get({ path: '/channels' })), {
      channels: { 'presence-a': {}, 'private-b': {}, 'public-c': {} },
    });
    assert.deepEqual(await json(await sdk.get({ path: '/channels', params: { filter_by_prefix: 'private-' } })), {
      channels: { 'private-b': {} },
    });
    assert.deepEqual(
      await json(await sdk.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } })),
      { channels: { 'presence-a': { user_count: 2 } } },
    );
    const bad = await sdkFailure(sdk.get({ path: '/channels', params: { info: 'user_count' } }));
    assert.equal(bad.status, 400);
    assert.match((bad.body as { error: string }).error, /presence-/);
    const badPrefix = await sdkFailure(sdk.get({ path: '/channels', params: { filter_by_prefix: 'private-', info: 'user_count' } }));
    assert.equal(badPrefix.status, 400);
  } finally {
    await server.close();
  }
});

test('GET /channels/{name}: occupied, subscription_count, user_count (presence only)', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    await subscribed(server.client(authOptions(sdk, { presence: { user_id: 'u1' } })), 'presence-x');
    await subscribed(server.client(authOptions(sdk, { presence: { user_id: 'u1' } })), 'presence-x');
    await subscribed(server.client(authOptions(sdk, { presence: { user_id: 'u2' } })), 'presence-x');
    await subscribed(server.client(), 'plain');

    assert.deepEqual(
      await json(await sdk.get({ path: '/channels/presence-x', params: { info: 'user_count,subscription_count' } })),
      { occupied: true, user_count: 2, subscription_count: 3 },
    );
    assert.deepEqual(await json(await sdk.get({ path: '/channels/plain', params: { info: 'subscription_count' } })), {
      occupied: true,
      subscription_count: 1,
    });
    assert.deepEqual(await json(await sdk.get({ path: '/channels/nobody-here' })), { occupied: false });
    const bad = await sdkFailure(sdk.get({ path: '/channels/plain', params: { info: 'user_count' } }));
    assert.equal(bad.status, 400);
  } finally {
    await server.close();
  }
});

test('GET /channels/{name}/users: the presence members; 400 for other channels', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    await subscribed(server.client(authOptions(sdk, { presence: { user_id: 'ann' } })), 'presence-users');
    await subscribed(server.client(authOptions(sdk, { presence: { user_id: 'ben' } })), 'presence-users');
    await subscribed(server.client(authOptions(sdk, { presence: { user_id: 'ben' } })), 'presence-users');
    const body = (await json(await sdk.get({ path: '/channels/presence-users/users' }))) as { users: { id: string }[] };
    assert.deepEqual(body.users.map((u) => u.id).sort(), ['ann', 'ben']);
    assert.deepEqual(await json(await sdk.get({ path: '/channels/presence-empty/users' })), { users: [] });
    const bad = await sdkFailure(sdk.get({ path: '/channels/private-users/users' }));
    assert.equal(bad.status, 400);
    assert.match((bad.body as { error: string }).error, /presence/);
  } finally {
    await server.close();
  }
});

test('POST /users/{id}/terminate_connections: every connection of that signed-in user is closed, others stay', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    const victimTabs = [1, 2].map(() => server.client(authOptions(sdk, { user: { id: 'victim' } })));
    const bystander = server.client(authOptions(sdk, { user: { id: 'bystander' } }));
    for (const c of [...victimTabs, bystander]) await signedIn(c);

    const gone = victimTabs.map((c) => nextEvent(c.connection, 'disconnected'));
    const response = await sdk.terminateUserConnections('victim');
    assert.equal(response.status, 200);
    assert.deepEqual(await json(response), {});
    await Promise.all(gone);
    // 4009 is in pusher-js' "do not reconnect unchanged" range: the tabs stay disconnected.
    for (const c of victimTabs) assert.equal(c.connection.state, 'disconnected');
    assert.equal(bystander.connection.state, 'connected');
    // The server logs the close once the close handshake completes, just after pusher-js has moved on.
    const terminated = () => server.logs.filter((l) => l.event === 'connection_closed' && l.reason === 'terminated');
    await until(() => terminated().length === 2, 'two connection_closed lines with reason terminated');
    const lines = terminated();
    assert.ok(lines.every((l) => l.code === 4009));
  } finally {
    await server.close();
  }
});

test('terminateUserConnections with ids the SDK signs plain and sends escaped (auth0|…, spaces, non-ASCII) closes them', async () => {
  const server = await startServer();
  try {
    const sdk = server.sdk();
    for (const id of ['auth0|5f7c8ec7', 'google-oauth2|1234', 'a b', 'ü']) {
      const victim = server.client(authOptions(sdk, { user: { id } }));
      const bystander = server.client(authOptions(sdk, { user: { id: `${id}-other` } }));
      for (const c of [victim, bystander]) await signedIn(c);
      const gone = nextEvent(victim.connection, 'disconnected');
      // The SDK signs `/users/auth0|5f7c8ec7/…` and its HTTP client sends `auth0%7C5f7c8ec7`: 401 before.
      const response = await sdk.terminateUserConnections(id);
      assert.equal(response.status, 200, id);
      await gone;
      assert.equal(bystander.connection.state, 'connected', id);
      bystander.disconnect();
    }
    assert.equal(server.logs.filter((l) => l.event === 'auth_failed').length, 0);
  } finally {
    await server.close();
  }
});

test('401: bad signature, wrong key, stale timestamp, body_md5 mismatch — each logged once with its reason', async () => {
  const server = await startServer();
  try {
    const body = JSON.stringify({ name: 'ev', channel: 'c', data: '{}' });
    // Each body is exactly its registry message, filled in once (API_EXPIRED's `%s` with the tolerance).
    const cases = [
      { reason: 'bad_signature', sign: { secret: 'wrong-secret' }, error: 'Invalid auth_signature' },
      { reason: 'unknown_key', sign: { key: 'wrong-key' }, error: 'Unknown auth_key' },
      {
        reason: 'expired',
        sign: { timestamp: Math.floor(Date.now() / 1000) - 601 },
        error: 'auth_timestamp is not a Unix time within 600 s of server time',
      },
      { reason: 'body_md5', sign: { bodyMd5: '0'.repeat(32) }, error: 'body_md5 does not match the body' },
    ];
    for (const c of cases) {
      const answer = await signedFetch(server, 'POST', EVENTS, { body, sign: c.sign });
      assert.equal(answer.status, 401, c.reason);
      assert.deepEqual(answer.body, { error: c.error }, c.reason);
      const line = await loggedOnce(server, { event: 'auth_failed', reason: c.reason });
      assert.equal(line.msg, c.error, c.reason);
      // Who sent it (a probe found no address on these lines), on its api_request line too.
      assert.equal(line.remote_address, '127.0.0.1', c.reason);
      const request = await loggedOnce(server, { event: 'api_request', request_id: line.request_id });
      assert.deepEqual([request.status_code, request.remote_address], [401, '127.0.0.1'], c.reason);
    }
    // An accepted call's line names no address: the caller is the app's backend.
    const accepted = await signedFetch(server, 'POST', EVENTS, { body });
    assert.equal(accepted.status, 200);
    await until(() => logLines(server, { event: 'api_request', status_code: 200 }).length > 0, 'the accepted call logged');
    assert.equal(logLines(server, { event: 'api_request', status_code: 200 })[0]!.remote_address, undefined);
    const unknownApp = await signedFetch(server, 'POST', '/apps/no-such-app/events', { body });
    assert.equal(unknownApp.status, 401);
    assert.deepEqual(unknownApp.body, { error: 'Unknown app id' });
    // A timestamp inside the ±600 s window is fine.
    const ok = await signedFetch(server, 'POST', EVENTS, { body, sign: { timestamp: Math.floor(Date.now() / 1000) - 500 } });
    assert.equal(ok.status, 200);
    // A GET carries no body_md5 and is signed all the same.
    const get = await signedFetch(server, 'GET', `/apps/${APP.id}/channels`, { sign: { secret: 'nope' } });
    assert.equal(get.status, 401);
  } finally {
    await server.close();
  }
});

test('401 through the SDK: a wrong secret and an unknown app id', async () => {
  const server = await startServer();
  try {
    assert.equal((await sdkFailure(server.sdk({ secret: 'wrong' }).trigger('c', 'e', {}))).status, 401);
    assert.equal((await sdkFailure(server.sdk({ appId: 'no-such-app' }).trigger('c', 'e', {}))).status, 401);
  } finally {
    await server.close();
  }
});

test('400: malformed publishes answer with a reason', async () => {
  const server = await startServer();
  try {
    const cases: [string, RegExp][] = [
      [JSON.stringify({ channel: 'c', data: '{}' }), /"name"/],
      [JSON.stringify({ name: 'e', channel: 'c', data: { not: 'a string' } }), /"data" must be a string/],
      [JSON.stringify({ name: 'e', channel: 'bad name', data: '{}' }), /Invalid channel name/],
      [JSON.stringify({ name: 'e', channels: Array.from({ length: 101 }, (_, i) => `c${i}`), data: '{}' }), /More than 100/],
      [JSON.stringify({ name: 'e', channel: 'c', data: '{}', socket_id: 'abc' }), /socket_id/],
      ['{not json', /JSON/],
    ];
    for (const [body, reason] of cases) {
      const answer = await signedFetch(server, 'POST', EVENTS, { body });
      assert.equal(answer.status, 400, body);
      assert.match((answer.body as { error: string }).error, reason, body);
    }
  } finally {
    await server.close();
  }
});

test('403: an app disabled in APPS_FILE is refused on the API (and on WebSocket with 4003)', async () => {
  const server = await startServerWithApps([
    { id: APP.id, key: APP.key, secret: APP.secret },
    { id: 'off-id', key: 'off-key', secret: 'off-secret', enabled: false },
  ]);
  try {
    const disabled = server.sdk({ appId: 'off-id', key: 'off-key', secret: 'off-secret' });
    const failure = await sdkFailure(disabled.trigger('c', 'e', {}));
    assert.equal(failure.status, 403);
    assert.match((failure.body as { error: string }).error, /disabled/);
    await loggedOnce(server, { event: 'api_request', status_code: 403 });
    // The enabled app of the same file still works.
    assert.equal((await server.sdk().trigger('c', 'e', {})).status, 200);
  } finally {
    await server.close();
  }
});

test('413: data over MAX_PAYLOAD_BYTES, on /events and inside a batch', async () => {
  const server = await startServer({ MAX_PAYLOAD_BYTES: '1024' });
  try {
    const sdk = server.sdk();
    const big = 'x'.repeat(2000);
    const single = await sdkFailure(sdk.trigger('c', 'e', big));
    assert.equal(single.status, 413);
    assert.match((single.body as { error: string }).error, /over 1024 bytes/);
    const batch = await sdkFailure(sdk.triggerBatch([{ channel: 'c', name: 'e', data: big }]));
    assert.equal(batch.status, 413);
    await loggedOnce(server, { event: 'api_request', route: '/apps/:appId/events', status_code: 413 });
    // Just under the limit is accepted (the JSON string of 1000 x is 1002 bytes).
    assert.equal((await sdk.trigger('c', 'e', 'x'.repeat(1000))).status, 200);
  } finally {
    await server.close();
  }
});

test('CORS: a browser preflight from any origin may send X-Socket-Id', async () => {
  const server = await startServer();
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}${EVENTS}`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-socket-id',
      },
      signal: AbortSignal.timeout(3000),
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://app.example');
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /X-Socket-Id/i);
  } finally {
    await server.close();
  }
});
