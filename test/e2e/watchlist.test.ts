/** Watchlist: a signed-in connection learns when a watched user comes online (first connection) and goes offline (last). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sign, userAuthString } from '../../src/protocol/signatures.js';
import { RawClient, type Frame } from '../helpers/raw-client.js';
import { APP, startServer } from '../helpers/server.js';

async function signedIn(port: number, user: Record<string, unknown>): Promise<RawClient> {
  const { client, socketId } = await RawClient.established(port);
  const userData = JSON.stringify(user);
  client.send({
    event: 'pusher:signin',
    data: { auth: `${APP.key}:${sign(APP.secret, userAuthString(socketId, userData))}`, user_data: userData },
  });
  await client.next('pusher:signin_success');
  return client;
}

const watchEvents = (client: RawClient): unknown[] =>
  client.all('pusher_internal:watchlist_events').map((f: Frame) => (f.data as { events: unknown[] }).events);

test('watchers get online on a user’s first connection and offline when its last one closes', async () => {
  const server = await startServer();
  try {
    const alice = await signedIn(server.port, { id: 'alice', watchlist: ['bob', 'carol'] });
    await alice.next('pusher_internal:watchlist_events');
    assert.deepEqual(watchEvents(alice), [[{ name: 'offline', user_ids: ['bob', 'carol'] }]]);

    const bob1 = await signedIn(server.port, { id: 'bob' });
    await alice.next((f) => f.event === 'pusher_internal:watchlist_events' && watchEvents(alice).length === 2);
    const bob2 = await signedIn(server.port, { id: 'bob' }); // a second tab: no new event
    await bob1.close();                                         // one tab left: still online
    await bob2.close();                                         // the last one: offline
    await alice.next((f) => f.event === 'pusher_internal:watchlist_events' && watchEvents(alice).length === 3);
    assert.deepEqual(watchEvents(alice), [
      [{ name: 'offline', user_ids: ['bob', 'carol'] }],
      [{ name: 'online', user_ids: ['bob'] }],
      [{ name: 'offline', user_ids: ['bob'] }],
    ]);
    await alice.close();
  } finally {
    await server.close();
  }
});
