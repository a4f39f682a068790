/**
 * Channel names in the HTTP API (src/http/routes/channels.ts, src/http/routes/events.ts): every name a client can subscribe
 * to is listed under its own name — `__proto__` included, which a plain object's assignment turned into its prototype —
 * and a name no client could subscribe to is refused on `GET /channels/{name}` and `/users` as a publish to it is
 * (API_INVALID_CHANNEL_NAME, 400), rather than answered as an empty channel.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { logLines } from '../helpers/logs.js';
import { RawClient } from '../helpers/raw-client.js';
import { APP, startServer } from '../helpers/server.js';
import { signedFetch } from '../helpers/signed-fetch.js';
import { until } from '../helpers/wait.js';

const API = `/apps/${APP.id}`;

test('a channel named __proto__ is listed by GET /channels and answered in a publish info like any other', async () => {
  const server = await startServer();
  try {
    const { client } = await RawClient.established(server.port);
    for (const channel of ['__proto__', 'room']) {
      client.send({ event: 'pusher:subscribe', data: { channel } });
      await client.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
    }
    const list = await signedFetch(server, 'GET', `${API}/channels`);
    assert.equal(list.status, 200, JSON.stringify(list.body));
    const channels = (list.body as { channels: object }).channels;
    // Own keys: `{ __proto__: {} }` written as a literal would set the prototype, not a key.
    assert.deepEqual(Object.keys(channels).sort(), ['__proto__', 'room']);

    const body = JSON.stringify({ name: 'ev', channels: ['__proto__', 'room'], data: '{}', info: 'subscription_count' });
    const published = await signedFetch(server, 'POST', `${API}/events`, { body });
    assert.equal(published.status, 200, JSON.stringify(published.body));
    const info = (published.body as { channels: Record<string, unknown> }).channels;
    assert.deepEqual(Object.keys(info).sort(), ['__proto__', 'room']);
    assert.deepEqual(Object.getOwnPropertyDescriptor(info, '__proto__')?.value, { subscription_count: 1 });
    await client.close();
  } finally {
    await server.close();
  }
});

test('GET /channels/{name} and /channels/{name}/users refuse an invalid channel name with 400, as a publish does', async () => {
  // Names over 20 characters reach the routes (the router allows the 128 of a user id) and must be refused there.
  const server = await startServer({ MAX_CHANNEL_NAME_LENGTH: '20' });
  try {
    const tooLong = `presence-${'x'.repeat(70)}`;
    // The name is checked first: whatever else the request asks, it is about a channel that cannot exist.
    const cases: Array<[string, Record<string, string>, string]> = [
      [`${API}/channels/bad%20name!`, {}, 'Invalid channel name: bad name!'],
      [`${API}/channels/bad%20name!`, { info: 'user_count' }, 'Invalid channel name: bad name!'],
      [`${API}/channels/bad%20name!/users`, {}, 'Invalid channel name: bad name!'],
      [`${API}/channels/presence-bad%20name!/users`, {}, 'Invalid channel name: presence-bad name!'],
      [`${API}/channels/${tooLong}`, { info: 'user_count' }, `Invalid channel name: ${tooLong.slice(0, 64)}`],
    ];
    const answers = await Promise.all(cases.map(([path, params]) => signedFetch(server, 'GET', path, { params })));
    assert.deepEqual(
      answers.map((a) => [a.status, a.body]),
      cases.map(([, , error]) => [400, { error }]),
    );
    // The same names made valid are served; `#server-to-user-` names are valid, as in a publish (the SDK's sendToUser).
    const ok = await signedFetch(server, 'GET', `${API}/channels/presence-good/users`);
    assert.deepEqual([ok.status, ok.body], [200, { users: [] }]);
    const user = await signedFetch(server, 'GET', `${API}/channels/${encodeURIComponent('#server-to-user-u1')}`);
    assert.deepEqual([user.status, user.body], [200, { occupied: false }]);
    assert.deepEqual(logLines(server, { level: 'error' }), []);
  } finally {
    await server.close();
  }
});

test('a channel name one over MAX_CHANNEL_NAME_LENGTH reaches the route (API_INVALID_CHANNEL_NAME); a longer path parameter gets API_PARAM_TOO_LONG', async () => {
  // Defaults: names of 200 characters, user ids of 128. The router's bound was the longest valid name itself, and a GET over
  // it fell to the catch-all WebSocket route: `GET /channels/{201 characters}` got 404 "Not found" (route "unmatched").
  const server = await startServer();
  try {
    const over = 'a'.repeat(201);
    const invalid = { error: `Invalid channel name: ${over.slice(0, 64)}` };
    const tooLong = { error: 'Path parameter too long' };
    const cases: Array<[string, number, unknown]> = [
      [`${API}/channels/${over}`, 400, invalid],
      [`${API}/channels/${over}/users`, 400, invalid],
      // Over the bound (the longest valid parameter in UTF-16 units, plus one: a user channel of 128 emoji, 16 + 256):
      // refused before any route, as a POST's parameter is.
      [`${API}/channels/${'a'.repeat(16 + 2 * 128 + 2)}`, 400, tooLong],
      [`${API}/channels/${'a'.repeat(5000)}/users`, 400, tooLong],
      [`${API}/${'a'.repeat(5000)}`, 400, tooLong],
    ];
    for (const [path, status, body] of cases) {
      const answer = await signedFetch(server, 'GET', path);
      assert.deepEqual([answer.status, answer.body], [status, body], `${path.length} characters of path`);
    }
    // Counted and logged as the router's refusals are: one line each.
    assert.equal(logLines(server, { event: 'request_malformed', reason: 'param_too_long', code: 400 }).length, 3);

    // The bound is on the decoded parameter: the longest valid user channel, every character of its id percent-encoded
    // (`%C3%A9`: 6 characters of path each, 786 in all), is served; a 404 stays a 404 however long its encoded path.
    const longestUser = `%23server-to-user-${encodeURIComponent('é'.repeat(128))}`;
    assert.ok(longestUser.length > 201, 'longer than the bound as written');
    const user = await signedFetch(server, 'GET', `${API}/channels/${longestUser}`);
    assert.deepEqual([user.status, user.body], [200, { occupied: false }]);
    // A user id is bounded in characters: 128 emoji (256 UTF-16 units) sign in, so their channel and their
    // terminate_connections are served (the router refused them before, counting units).
    const emoji = encodeURIComponent('😀'.repeat(128));
    const emojiUser = await signedFetch(server, 'GET', `${API}/channels/%23server-to-user-${emoji}`);
    assert.deepEqual([emojiUser.status, emojiUser.body], [200, { occupied: false }]);
    const terminated = await signedFetch(server, 'POST', `${API}/users/${emoji}/terminate_connections`, { body: '{}' });
    assert.equal(terminated.status, 200);
    const missing = await signedFetch(server, 'GET', `${API}/nothing/${encodeURIComponent('é'.repeat(150))}`);
    assert.deepEqual([missing.status, missing.body], [404, { error: 'Not found' }]);
    // The over-long GETs were not also logged as requests to no route (each was logged twice, and counted twice): the one
    // unmatched request is this 404, whose line comes after theirs.
    await until(() => logLines(server, { event: 'api_request', route: 'unmatched', status_code: 404 }).length === 1, 'the 404 logged');
    assert.deepEqual(logLines(server, { event: 'api_request', route: 'unmatched' }).map((line) => line.status_code), [404]);
    assert.deepEqual(logLines(server, { level: 'error' }), []);
  } finally {
    await server.close();
  }
});
