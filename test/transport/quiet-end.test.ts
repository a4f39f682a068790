/**
 * transport/quiet-end.ts against the installed ws: a closing connection ends its socket and its Receiver again after they
 * ended (ws's `socketOnEnd` and `socketOnClose`), and each such call on Node's `end()` builds an error with the whole
 * stack. Beacon's server side makes none of those calls reach Node's `end()`, whichever side closes, and the connection
 * still closes as before (counted, logged, its socket gone).
 */
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { startServer, APP, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

type End = (this: Writable, ...args: unknown[]) => Writable;

/** Calls of Node's own `end()` on a server-side socket or Receiver whose end was already called, by stream kind. */
const again = { socket: 0, receiver: 0 };
/** The same on the client side (this process's ws clients): that ws does it at all, so the count above could be more than 0. */
const clientAgain = { socket: 0, receiver: 0 };
let server: TestServer;
const socketEnd = Socket.prototype.end as End;
const writableEnd = Writable.prototype.end as End;

before(async () => {
  server = await startServer();
  const port = server.port;
  Socket.prototype.end = function (this: Socket, ...args: unknown[]) {
    if (this.writableEnded) (this.localPort === port ? again : clientAgain).socket++;
    return socketEnd.apply(this, args);
  } as Socket['end'];
  Writable.prototype.end = function (this: Writable & { _isServer?: boolean }, ...args: unknown[]) {
    if (this.writableEnded && this._isServer !== undefined) (this._isServer ? again : clientAgain).receiver++;
    return writableEnd.apply(this, args);
  } as Writable['end'];
});

after(async () => {
  Socket.prototype.end = socketEnd as Socket['end'];
  Writable.prototype.end = writableEnd as Writable['end'];
  await server.close();
});

/**
 * Opens `n` subscribed connections, closes each with `close`, waits for the server's `connection_closed` of each, and
 * returns the server side's calls of `end()` again meanwhile.
 */
async function openAndClose(n: number, close: (ws: WebSocket) => void): Promise<typeof again> {
  const before = { ...again };
  const closedBefore = server.logs.filter((l) => l.event === 'connection_closed').length;
  const sockets = await Promise.all(
    Array.from({ length: n }, () => {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/app/${APP.key}?protocol=7&client=js&version=8`);
      return new Promise<WebSocket>((resolve, reject) => {
        ws.once('error', reject);
        ws.on('message', (data) => {
          const event = (JSON.parse(String(data)) as { event: string }).event;
          if (event === 'pusher:connection_established') ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'c' } }));
          if (event === 'pusher_internal:subscription_succeeded') resolve(ws);
        });
      });
    }),
  );
  const closed = Promise.all(sockets.map((ws) => new Promise((resolve) => ws.once('close', resolve))));
  for (const ws of sockets) close(ws);
  await closed;
  await until(
    () => server.logs.filter((l) => l.event === 'connection_closed').length === closedBefore + n,
    'the server closed every connection',
  );
  return { socket: again.socket - before.socket, receiver: again.receiver - before.receiver };
}

test('a client that closes with a close frame: no end() again on the server side', async () => {
  const clientBefore = { ...clientAgain };
  const serverSide = await openAndClose(20, (ws) => ws.close(1000));
  // The client's ws does it (its Receiver ended by the server's close frame, then again on the socket's end and close).
  assert.ok(clientAgain.receiver > clientBefore.receiver, 'ws ends an ended Receiver again on this ws version');
  assert.deepEqual(serverSide, { socket: 0, receiver: 0 });
});

test('a client that goes away without a close frame: no end() again on the server side', async () => {
  assert.deepEqual(await openAndClose(20, (ws) => ws.terminate()), { socket: 0, receiver: 0 });
});
