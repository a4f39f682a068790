import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startServer } from '../helpers/server.js';

test('a pusher-js client receives an event triggered with the pusher SDK', async () => {
  const server = await startServer();
  try {
    const client = server.client();
    const channel = client.subscribe('my-channel');
    await new Promise<void>((resolve) => channel.bind('pusher:subscription_succeeded', () => resolve()));
    const received = new Promise((resolve) => channel.bind('greeting', resolve));
    const response = await server.sdk().trigger('my-channel', 'greeting', { hello: 'world' });
    assert.equal(response.status, 200);
    assert.deepEqual(await received, { hello: 'world' });
    assert.ok(server.logs.some((l) => l.event === 'connection_opened'));
  } finally {
    await server.close();
  }
});
