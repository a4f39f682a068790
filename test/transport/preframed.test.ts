/**
 * Pre-framed writes against the installed `ws`: a real ws client receives exactly the frames, in order with frames sent
 * through `send()`; the raw path is taken in the plain open state and `send()` is used whenever ws's own state says
 * otherwise (permessage-deflate, a Blob read in progress in its Sender, closing); an idle Sender never has frames queued
 * (the raw path does not read the queue), and a Connection takes the raw path. If a ws upgrade changes the internals this
 * relies on, these tests fail instead of Beacon silently losing the fast path or overtaking queued frames.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer, type ServerOptions } from 'ws';
import { canWriteRaw, TextFrame, writeTextFrame } from '../../src/transport/preframed.js';
import { unitConnection } from '../helpers/unit.js';
import { within } from '../helpers/wait.js';

/** A ws server on 127.0.0.1 and one connected client; resolves with the server side of the connection. */
async function pair(options: ServerOptions = {}): Promise<{
  server: WebSocket;
  client: WebSocket;
  received: (n: number) => Promise<string[]>;
  close: () => Promise<void>;
}> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options });
  await once(wss, 'listening');
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate: options.perMessageDeflate !== undefined && options.perMessageDeflate !== false });
  const messages: string[] = [];
  const waiters: (() => void)[] = [];
  client.on('message', (data, isBinary) => {
    messages.push(`${isBinary ? 'binary' : 'text'}:${String(data)}`);
    for (const w of waiters.splice(0)) w();
  });
  await once(client, 'open');
  const [server] = await accepted;
  return {
    server,
    client,
    received: (n) =>
      within(
        new Promise<string[]>((resolve) => {
          const check = (): void => (messages.length >= n ? resolve(messages.slice(0, n)) : void waiters.push(check));
          check();
        }),
        `${n} messages`,
      ),
    close: async () => {
      client.terminate();
      wss.close();
      await once(wss, 'close');
    },
  };
}

test('in the plain open state the frame is written raw, and the client reads it exactly, in order with send()', async () => {
  const { server, received, close } = await pair();
  try {
    assert.equal(canWriteRaw(server), true, 'the installed ws no longer exposes the state this module relies on');
    const small = new TextFrame(Buffer.from('{"event":"a","data":"é"}'));
    const medium = new TextFrame(Buffer.from(`{"pad":"${'x'.repeat(300)}"}`)); // 16-bit length
    const large = new TextFrame(Buffer.from(`{"pad":"${'y'.repeat(70_000)}"}`)); // 64-bit length
    assert.equal(writeTextFrame(server, small), true);
    server.send('between');
    assert.equal(writeTextFrame(server, medium), true);
    assert.equal(writeTextFrame(server, large), true);
    assert.equal(writeTextFrame(server, small), true, 'a frame is reused as is');
    assert.deepEqual(await received(5), [
      'text:{"event":"a","data":"é"}',
      'text:between',
      `text:{"pad":"${'x'.repeat(300)}"}`,
      `text:{"pad":"${'y'.repeat(70_000)}"}`,
      'text:{"event":"a","data":"é"}',
    ]);
    assert.equal(server.bufferedAmount >= 0, true);
  } finally {
    await close();
  }
});

test('raw bytes are exactly what send() writes', async () => {
  const { server, close } = await pair();
  try {
    const payload = Buffer.from(`{"pad":"${'z'.repeat(200)}"}`);
    const socket = (server as unknown as { _socket: { write: (chunk: Buffer) => boolean } })._socket;
    const written: Buffer[] = [];
    const write = socket.write.bind(socket);
    socket.write = (chunk: Buffer) => {
      written.push(Buffer.from(chunk));
      return write(chunk);
    };
    server.send(payload, { binary: false });
    const viaSend = Buffer.concat(written.splice(0));
    assert.equal(writeTextFrame(server, new TextFrame(payload)), true);
    assert.deepEqual(Buffer.concat(written), viaSend);
  } finally {
    await close();
  }
});

test('a bytes queued in the socket still count in bufferedAmount (slow-consumer accounting)', async () => {
  const { server, client, close } = await pair();
  try {
    client.pause();
    const frame = new TextFrame(Buffer.alloc(64 * 1024, 0x61));
    // Bounded: 200 × 64 KiB is far more than loopback socket buffers.
    for (let i = 0; i < 200 && server.bufferedAmount === 0; i++) writeTextFrame(server, frame);
    for (let i = 0; i < 20; i++) writeTextFrame(server, frame);
    assert.ok(server.bufferedAmount >= 20 * frame.payload.length, `bufferedAmount ${server.bufferedAmount}`);
  } finally {
    await close();
  }
});

test('several frames to one socket in one turn: the first written at once, the rest in one writev when the turn ends', async () => {
  const { server, received, close } = await pair();
  try {
    const socket = (server as unknown as { _socket: Socket })._socket;
    const batches: number[] = [];
    const writev = (socket as unknown as { _writev: (chunks: unknown[], cb: () => void) => void })._writev.bind(socket);
    (socket as unknown as { _writev: (chunks: unknown[], cb: () => void) => void })._writev = (chunks, cb) => {
      batches.push(chunks.length);
      writev(chunks, cb);
    };
    const turns = { lastWriteTurn: 0, writeCorked: false };
    writeTextFrame(server, new TextFrame(Buffer.from('one')), turns);
    assert.equal(socket.writableCorked, 0, 'a single frame is not held back');
    writeTextFrame(server, new TextFrame(Buffer.from('two')), turns);
    server.send('three (through ws)');
    writeTextFrame(server, new TextFrame(Buffer.from('four')), turns);
    assert.equal(socket.writableCorked, 1);
    await Promise.resolve();
    assert.equal(socket.writableCorked, 0, 'uncorked when the turn ended');
    assert.deepEqual(batches, [4], 'frames 2-4 (ws writes header and payload apart) in one writev');
    assert.deepEqual(await received(4), ['text:one', 'text:two', 'text:three (through ws)', 'text:four']);
    writeTextFrame(server, new TextFrame(Buffer.from('next turn')), turns);
    assert.equal(socket.writableCorked, 0, 'the first frame of the next turn goes at once');
    assert.deepEqual(await received(5), ['text:one', 'text:two', 'text:three (through ws)', 'text:four', 'text:next turn']);
  } finally {
    await close();
  }
});

test('permessage-deflate negotiated: always send()', async () => {
  const { server, received, close } = await pair({ perMessageDeflate: { threshold: 0 } });
  try {
    assert.notEqual(server.extensions, '');
    assert.equal(canWriteRaw(server), false);
    assert.equal(writeTextFrame(server, new TextFrame(Buffer.from('compressed'))), false);
    assert.equal(writeTextFrame(server, new TextFrame(Buffer.from('again'))), false);
    assert.deepEqual(await received(2), ['text:compressed', 'text:again']);
  } finally {
    await close();
  }
});

test('the Sender busy (a Blob being read, frames queued behind it): send(), so order is kept', async () => {
  const { server, received, close } = await pair();
  try {
    server.send(new Blob(['from a blob']));
    assert.equal(canWriteRaw(server), false, 'the Sender is reading the Blob');
    assert.equal(writeTextFrame(server, new TextFrame(Buffer.from('after the blob'))), false);
    assert.deepEqual(await received(2), ['binary:from a blob', 'text:after the blob']);
    assert.equal(canWriteRaw(server), true, 'idle again once the queue drained');
  } finally {
    await close();
  }
});

/**
 * Sends `count` messages through ws while sampling its Sender after each send and at every turn of the event loop until
 * the client has them all; asserts that the Sender was never idle with frames queued, and returns how often frames were.
 */
async function sampleSender(
  { server, received }: Awaited<ReturnType<typeof pair>>,
  send: (i: number) => void,
  count: number,
): Promise<number> {
  const sender = (server as unknown as { _sender: { _state: unknown; _queue: unknown[] } })._sender;
  let queuedSamples = 0;
  const sample = (): void => {
    if (sender._queue.length === 0) return;
    queuedSamples++;
    assert.notEqual(sender._state, 0, 'ws left its Sender idle with frames queued: a raw write would overtake them');
  };
  for (let i = 0; i < count; i++) {
    send(i);
    sample();
  }
  let done = false;
  const all = received(count).finally(() => {
    done = true;
  });
  while (!done) {
    sample();
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal((await all).length, count);
  assert.equal(sender._queue.length, 0);
  assert.equal(sender._state, 0, 'idle once everything was sent');
  return queuedSamples;
}

test('an idle Sender has nothing queued, so the raw path does not read the queue (ws drains it as the Sender turns idle)', async () => {
  const deflating = await pair({ perMessageDeflate: { threshold: 0 } });
  try {
    const queued = await sampleSender(deflating, (i) => deflating.server.send(`compressed ${i}`), 50);
    assert.ok(queued > 0, 'nothing was queued behind the compression: the test did not exercise the queue');
  } finally {
    await deflating.close();
  }
  const plain = await pair();
  try {
    const queued = await sampleSender(plain, (i) => plain.server.send(i % 5 === 0 ? new Blob([`blob ${i}`]) : `text ${i}`), 50);
    assert.ok(queued > 0, 'nothing was queued behind the Blob reads: the test did not exercise the queue');
  } finally {
    await plain.close();
  }
});

/** How often `send` calls `write` on `server`'s TCP socket and ws's own `send()`. */
function countSocketWrites(server: WebSocket, send: () => void): { write: number; send: number } {
  const socket = (server as unknown as { _socket: Socket })._socket;
  const counts = { write: 0, send: 0 };
  const write = socket.write;
  const wsSend = server.send;
  socket.write = ((...args: Parameters<Socket['write']>) => {
    counts.write++;
    return write.apply(socket, args);
  }) as Socket['write'];
  server.send = ((...args: Parameters<WebSocket['send']>) => {
    counts.send++;
    return wsSend.apply(server, args);
  }) as WebSocket['send'];
  try {
    send();
  } finally {
    socket.write = write;
    server.send = wsSend;
  }
  return counts;
}

test('a Connection writes fan-out frames raw on a plain socket, and through send() when an extension was negotiated', async () => {
  const plain = await pair();
  try {
    const connection = unitConnection(plain.server);
    const counts = countSocketWrites(plain.server, () => assert.equal(connection.sendTextFrame(new TextFrame(Buffer.from('raw'))), true));
    assert.deepEqual(counts, { write: 1, send: 0 }, 'one socket write of the pre-built frame, no send()');
    assert.deepEqual(await plain.received(1), ['text:raw']);
  } finally {
    await plain.close();
  }
  const deflating = await pair({ perMessageDeflate: { threshold: 0 } });
  try {
    const connection = unitConnection(deflating.server);
    const counts = countSocketWrites(deflating.server, () => assert.equal(connection.sendTextFrame(new TextFrame(Buffer.from('deflated'))), true));
    assert.equal(counts.send, 1, 'ws frames (and compresses) it');
    assert.deepEqual(await deflating.received(1), ['text:deflated']);
  } finally {
    await deflating.close();
  }
});

test('closing: no raw write (send() reports it as ws does)', async () => {
  const { server, close } = await pair();
  try {
    server.close(1000);
    assert.equal(canWriteRaw(server), false);
    assert.equal(writeTextFrame(server, new TextFrame(Buffer.from('late'))), false);
  } finally {
    await close();
  }
});
