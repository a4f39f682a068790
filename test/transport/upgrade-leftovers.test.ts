/**
 * Once a connection is accepted, nothing of the HTTP request that carried its upgrade stays alive: the request, the
 * response @fastify/websocket built to route it and fastify's wrappers are garbage (src/transport/upgrade-leftovers.ts).
 * Seen from outside: the server's `upgrade` request is held only weakly here, and after a forced GC it is gone while the
 * connection still receives events and still answers a bad frame with its close code.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { gc } from '../helpers/gc.js';
import { RawClient } from '../helpers/raw-client.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** Collects garbage until `ref` is cleared (a few full GCs at most, each after a turn of the event loop). */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 10 && ref.deref() !== undefined; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  return ref.deref() === undefined;
}

describe('what an accepted connection keeps of its upgrade request', () => {
  let server: TestServer;
  const requests: WeakRef<IncomingMessage>[] = [];

  before(async () => {
    server = await startServer();
    server.app.fastify.server.on('upgrade', (request: IncomingMessage) => requests.push(new WeakRef(request)));
  });

  after(async () => {
    await server.close();
  });

  it('lets the request go, and the connection still receives events and handles socket errors', async () => {
    const { client } = await RawClient.established(server.port);
    client.send({ event: 'pusher:subscribe', data: { channel: 'news' } });
    await client.next('pusher_internal:subscription_succeeded');
    assert.equal(requests.length, 1);

    assert.ok(await collected(requests[0]!), 'the upgrade request of an open connection was collected');

    await server.sdk().trigger('news', 'after-gc', { n: 1 });
    const event = await client.next('after-gc');
    assert.deepEqual(event.data, { n: 1 });

    // A text frame that is not UTF-8 is an error of the server's WebSocket: the connection's own listener answers it.
    client.ws.send(Buffer.from([0xff, 0xfe]), { binary: false });
    const closed = await client.waitClosed();
    assert.equal(closed.code, 1007);
    const again = await RawClient.established(server.port);
    await again.client.close();
  });
});
