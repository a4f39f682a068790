/**
 * Path parameters of the HTTP API (src/http/params.ts): channel names up to MAX_CHANNEL_NAME_LENGTH and user ids up to
 * MAX_PRESENCE_USER_ID_LENGTH work in API paths, and a longer parameter gets the API's own JSON error, echoing nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawClient } from '../helpers/raw-client.js';
import { APP, startServer } from '../helpers/server.js';
import { signedFetch } from '../helpers/signed-fetch.js';

test('a 200-character channel name and a 128-character user id work in API paths', async () => {
  const server = await startServer();
  try {
    const channel = `c-${'x'.repeat(198)}`;
    assert.equal(channel.length, server.config.maxChannelNameLength);
    const { client } = await RawClient.established(server.port);
    client.send({ event: 'pusher:subscribe', data: { channel } });
    await client.next('pusher_internal:subscription_succeeded');
    const info = await signedFetch(server, 'GET', `/apps/${APP.id}/channels/${channel}`, { params: { info: 'subscription_count' } });
    assert.equal(info.status, 200, JSON.stringify(info.body));
    assert.deepEqual(info.body, { occupied: true, subscription_count: 1 });
    const userId = 'u'.repeat(server.config.maxPresenceUserIdLength);
    const terminate = await signedFetch(server, 'POST', `/apps/${APP.id}/users/${userId}/terminate_connections`, { body: '{}' });
    assert.equal(terminate.status, 200, JSON.stringify(terminate.body));
    assert.deepEqual(terminate.body, {});
    await client.close();
  } finally {
    await server.close();
  }
});

test('a path parameter over the limit gets a JSON error that does not echo the URL', async () => {
  const server = await startServer();
  try {
    const long = 'z'.repeat(300);
    for (const [method, path] of [
      ['POST', `/apps/${APP.id}/users/${long}/terminate_connections`],
      ['GET', `/apps/${APP.id}/channels/${long}`],
      ['GET', `/apps/${APP.id}/channels/${long}/users`],
    ] as const) {
      const answer = await signedFetch(server, method, path, method === 'POST' ? { body: '{}' } : {});
      assert.ok(answer.status === 400 || answer.status === 404, `${method} ${path.slice(0, 40)}…: ${answer.status}`);
      const body = answer.body as { error?: unknown };
      assert.equal(typeof body.error, 'string', JSON.stringify(answer.body));
      assert.deepEqual(Object.keys(body), ['error']);
      assert.doesNotMatch(JSON.stringify(answer.body), /zzzz/, 'the parameter is not echoed');
    }
  } finally {
    await server.close();
  }
});
