/**
 * Pre-framed writes against the installed `ws`, through the one writer of a socket, a Connection: a real ws client
 * receives exactly the frames, in order with the frames the connection sends through `ws.send()`; a plain socket takes
 * them raw, a socket with permessage-deflate or a closing connection does not; what the socket buffers is all of
 * `bufferedAmount`; and every way a Connection writes leaves ws's Sender idle and between messages, which is why the raw
 * path never reads it. If a ws upgrade changes the internals this relies on, these tests fail instead of Beacon silently
 * losing the fast path or overtaking frames ws holds.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer, type ServerOptions } from 'ws';
import { Errors } from '../../src/protocol/errors.js';
import type { Connection } from '../../src/transport/connection.js';
import { rawFrameSocket, TextFrame } from '../../src/transport/preframed.js';
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

/** ws's private state the raw path relies on, read only by these tests. */
interface WsState {
  _socket: Socket;
  _sender: { _state: number; _firstFragment: boolean; _queue: unknown[]; _bufferedBytes: number };
}
const internals = (server: WebSocket): WsState => server as unknown as WsState;

/** The TCP handle under a socket: what every write, Node's own or direct (transport/direct-write.ts), ends in. */
interface HandleWrites {
  writeBuffer(req: object, data: Buffer): number;
  writev(req: object, chunks: unknown[], allBuffers: boolean): number;
}

/**
 * Records each call on `server`'s TCP handle while `send` runs and until the turn ends (write-turns.ts flushes then):
 * the chunks of each, so one call of one chunk is a frame written whole in one write. Also counts ws's own `send()`.
 */
async function recordHandleWrites(server: WebSocket, send: () => void): Promise<{ calls: Buffer[][]; send: number }> {
  const handle = (internals(server)._socket as unknown as { _handle: HandleWrites })._handle;
  const calls: Buffer[][] = [];
  const counts = { send: 0 };
  const wsSend = server.send;
  handle.writeBuffer = function (this: HandleWrites, req, data) {
    calls.push([Buffer.from(data)]);
    return Object.getPrototypeOf(this).writeBuffer.call(this, req, data);
  };
  handle.writev = function (this: HandleWrites, req, chunks, allBuffers) {
    calls.push((allBuffers ? chunks : chunks.filter((_, i) => i % 2 === 0)).map((chunk) => Buffer.from(chunk as Buffer)));
    return Object.getPrototypeOf(this).writev.call(this, req, chunks, allBuffers);
  };
  server.send = ((...args: Parameters<WebSocket['send']>) => {
    counts.send++;
    return wsSend.apply(server, args);
  }) as WebSocket['send'];
  try {
    send();
    await Promise.resolve();
  } finally {
    delete (handle as Partial<HandleWrites>).writeBuffer;
    delete (handle as Partial<HandleWrites>).writev;
    server.send = wsSend;
  }
  return { calls, send: counts.send };
}

test('a plain socket takes fan-out frames raw, one buffer each, in order with what goes through send()', async () => {
  const { server, received, close } = await pair();
  try {
    assert.equal(rawFrameSocket(server), internals(server)._socket, 'the installed ws no longer exposes the state this module relies on');
    const connection = unitConnection(server);
    const small = new TextFrame(Buffer.from('{"event":"a","data":"é"}'));
    const medium = new TextFrame(Buffer.from(`{"pad":"${'x'.repeat(300)}"}`)); // 16-bit length
    const large = new TextFrame(Buffer.from(`{"pad":"${'y'.repeat(70_000)}"}`)); // 64-bit length
    const { calls, send } = await recordHandleWrites(server, () => {
      assert.equal(connection.sendTextFrame(small), true);
      assert.equal(connection.sendFrame(Buffer.from('between'), 7), true);
      assert.equal(connection.sendTextFrame(medium), true);
      assert.equal(connection.sendTextFrame(large), true);
      assert.equal(connection.sendTextFrame(small), true, 'a frame is reused as is');
    });
    assert.equal(send, 1);
    // The turn's first frame in one write; ws writes its frame as header and payload; the rest of the turn together, but
    // flushed before the next frame once the corked bytes pass FLUSH_CORKED_BYTES (64 KiB): medium and large, then small.
    assert.deepEqual(
      calls.map((chunks) => chunks.length),
      [1, 2, 2, 1],
      'one buffer per pre-built frame',
    );
    assert.deepEqual(await received(5), [
      'text:{"event":"a","data":"é"}',
      'text:between',
      `text:{"pad":"${'x'.repeat(300)}"}`,
      `text:{"pad":"${'y'.repeat(70_000)}"}`,
      'text:{"event":"a","data":"é"}',
    ]);
  } finally {
    await close();
  }
});

test('raw bytes are exactly what send() writes', async () => {
  const { server, close } = await pair();
  try {
    const connection = unitConnection(server);
    const payload = Buffer.from(`{"pad":"${'z'.repeat(200)}"}`);
    const viaSend = await recordHandleWrites(server, () => connection.sendFrame(payload, payload.length));
    const raw = await recordHandleWrites(server, () => connection.sendTextFrame(new TextFrame(payload)));
    assert.equal(raw.calls.length, 1);
    assert.deepEqual(raw.calls[0], [Buffer.concat(viaSend.calls.flat())]);
  } finally {
    await close();
  }
});

test('permessage-deflate negotiated: every frame through send()', async () => {
  const { server, received, close } = await pair({ perMessageDeflate: { threshold: 0 } });
  try {
    assert.notEqual(server.extensions, '');
    assert.equal(rawFrameSocket(server), undefined);
    const connection = unitConnection(server);
    const counts = await recordHandleWrites(server, () => assert.equal(connection.sendTextFrame(new TextFrame(Buffer.from('deflated'))), true));
    assert.equal(counts.send, 1, 'ws frames (and compresses) it');
    assert.deepEqual(await received(1), ['text:deflated']);
  } finally {
    await close();
  }
});

/**
 * Asserts that ws's Sender is idle, between messages and holds nothing: the state in which ws writes a frame straight to
 * the socket, so a raw write neither overtakes a frame nor lands inside one, and `bufferedAmount` is what the socket holds.
 */
function assertSenderIdle(server: WebSocket, after: string): void {
  const { _sender: sender, _socket: socket } = internals(server);
  assert.equal(sender._state, 0, `${after}: ws's Sender is busy`);
  assert.equal(sender._firstFragment, true, `${after}: ws's Sender is inside a fragmented message`);
  assert.equal(sender._queue.length, 0, `${after}: ws queued a frame`);
  assert.equal(server.bufferedAmount, socket.writableLength, `${after}: bufferedAmount is not all in the socket`);
}

test('every way a Connection writes leaves ws\'s Sender idle and between messages (the raw path never reads it)', async () => {
  const { server, client, received, close } = await pair();
  try {
    // The sampled fields do say when ws is busy: a Blob, which a Connection never sends, holds the Sender while it is read.
    const probe = await pair();
    try {
      probe.server.send(new Blob(['a blob']));
      assert.notEqual(internals(probe.server)._sender._state, 0, 'a Blob being read shows as a busy Sender');
    } finally {
      await probe.close();
    }
    const connection: Connection = unitConnection(server);
    // With the client not reading, the socket buffers: writes still leave ws at once, into the socket's buffer.
    client.pause();
    const steps: [string, () => void][] = [
      ['a fan-out frame', () => connection.sendTextFrame(new TextFrame(Buffer.from('fan-out')))],
      ['a frame through send()', () => connection.sendFrame(Buffer.from('frame'), 5)],
      ['a frame of its own', () => connection.send('{"event":"pusher:pong","data":"{}"}', 'protocol')],
      ['a ping', () => connection.ping(Date.now())],
      ['a refused frame', () => connection.reject({ reason: 'invalid_json', message: 'bad', code: null })],
      ['a large fan-out frame', () => connection.sendTextFrame(new TextFrame(Buffer.alloc(200_000, 0x62)))],
    ];
    for (const [name, write] of steps) {
      write();
      assertSenderIdle(server, name);
    }
    assert.ok(server.bufferedAmount > 0, 'the socket held frames back: the test did not exercise a buffering socket');
    client.resume();
    // ws answers a client's ping itself (a pong from its Sender).
    client.ping('are you there');
    await once(client, 'pong');
    assertSenderIdle(server, "ws's own pong");
    assert.equal((await received(steps.length)).length, steps.length);
    connection.close(Errors.CLOSE_OVER_CAPACITY.code, 'closing', 'server_shutdown');
    assertSenderIdle(server, 'the close (an error frame and the close frame)');
    assert.equal(connection.sendTextFrame(new TextFrame(Buffer.from('late'))), false, 'nothing is written once closing');
  } finally {
    await close();
  }
});

test('frames a socket holds back count in bufferedAmount, and the slow-consumer bound reads them', async () => {
  const { server, client, close } = await pair();
  try {
    client.pause();
    const connection = unitConnection(server, { sendBufferMaxBytes: 1_000_000 });
    const frame = new TextFrame(Buffer.alloc(64 * 1024, 0x61));
    // Bounded: 200 × 64 KiB is far more than loopback socket buffers and the bound together.
    let written = 0;
    while (written < 200 && connection.sendTextFrame(frame)) written++;
    assert.ok(written < 200, 'the bound never refused a frame');
    assert.equal(connection.closeReason, 'slow_consumer');
    assert.ok(server.bufferedAmount > 1_000_000, `bufferedAmount ${server.bufferedAmount}`);
    assert.equal(server.bufferedAmount, internals(server)._socket.writableLength);
  } finally {
    await close();
  }
});

test('several frames to one socket in one turn: the first written at once, the rest in one writev when the turn ends', async () => {
  const { server, received, close } = await pair();
  try {
    const connection = unitConnection(server);
    const socket = internals(server)._socket;
    const batches: number[] = [];
    const writev = (socket as unknown as { _writev: (chunks: unknown[], cb: () => void) => void })._writev.bind(socket);
    (socket as unknown as { _writev: (chunks: unknown[], cb: () => void) => void })._writev = (chunks, cb) => {
      batches.push(chunks.length);
      writev(chunks, cb);
    };
    connection.sendTextFrame(new TextFrame(Buffer.from('one')));
    assert.equal(socket.writableCorked, 0, 'a single frame is not held back');
    connection.sendTextFrame(new TextFrame(Buffer.from('two')));
    connection.sendFrame(Buffer.from('three (through ws)'), 18);
    connection.sendTextFrame(new TextFrame(Buffer.from('four')));
    assert.equal(socket.writableCorked, 1);
    await Promise.resolve();
    assert.equal(socket.writableCorked, 0, 'uncorked when the turn ended');
    assert.deepEqual(batches, [4], 'frames 2-4 (ws writes header and payload apart) in one writev');
    assert.deepEqual(await received(4), ['text:one', 'text:two', 'text:three (through ws)', 'text:four']);
    connection.sendTextFrame(new TextFrame(Buffer.from('next turn')));
    assert.equal(socket.writableCorked, 0, 'the first frame of the next turn goes at once');
    assert.deepEqual(await received(5), ['text:one', 'text:two', 'text:three (through ws)', 'text:four', 'text:next turn']);
  } finally {
    await close();
  }
});
