/**
 * Direct socket writes against the running Node, over real loopback TCP sockets: a frame written directly reaches the
 * peer without `socket.write()`, in order with what Node writes; a socket that is corked, holds bytes, has bytes queued
 * in libuv or an idle timeout goes through `socket.write()`; when the kernel takes part of a frame the rest is held in
 * order and counted; a peer that is gone ends the socket, whether the write is refused at once or fails later. If a
 * Node upgrade changes the internals direct-write.ts relies on, these tests fail instead of Beacon silently losing the
 * fast path or reordering bytes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { directWriteHandle, queuedBytes, writeToSocket } from '../../src/transport/direct-write.js';
import { within } from '../helpers/wait.js';

/** A listening server on `where` and one connected client; resolves with both ends. */
async function connect(where: { port: 0 } | { path: string }): Promise<{ server: Socket; client: Socket; close: () => Promise<void> }> {
  const listener: Server = createServer();
  listener.listen('port' in where ? { port: 0, host: '127.0.0.1' } : where);
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[Socket]>;
  const client = 'port' in where ? createConnection((listener.address() as AddressInfo).port, '127.0.0.1') : createConnection(where.path);
  await once(client, 'connect');
  const [server] = await accepted;
  return {
    server,
    client,
    close: async () => {
      client.destroy();
      server.destroy();
      listener.close();
      await once(listener, 'close');
    },
  };
}

/** Everything `client` reads until it has `bytes` bytes. */
function readBytes(client: Socket, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  return within(
    new Promise<Buffer>((resolve) => {
      client.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        total += chunk.length;
        if (total >= bytes) resolve(Buffer.concat(chunks));
      });
    }),
    `${bytes} bytes`,
  );
}

/** Stops reading `socket` (its handle's own `readStop`): a reset then reaches Node only through a write. */
function stopReading(socket: Socket): void {
  (socket as unknown as { _handle: { readStop(): number } })._handle.readStop();
}

/** Counts calls of `socket.write()` while `run` runs. */
function countWrites(socket: Socket, run: () => void): number {
  let calls = 0;
  const write = socket.write;
  socket.write = ((...args: Parameters<Socket['write']>) => {
    calls++;
    return write.apply(socket, args);
  }) as Socket['write'];
  try {
    run();
  } finally {
    socket.write = write;
  }
  return calls;
}

test('a plain TCP socket is written directly, without socket.write(), in order with what Node writes', async () => {
  const { server, client, close } = await connect({ port: 0 });
  try {
    const handle = directWriteHandle(server);
    assert.notEqual(handle, undefined, 'this Node no longer offers what direct writes need');
    const received = readBytes(client, 9);
    const calls = countWrites(server, () => {
      writeToSocket(server, handle, Buffer.from('one'));
      server.write('two');
      writeToSocket(server, handle, Buffer.from('six'));
    });
    assert.equal(calls, 1, 'only the frame Node was given went through socket.write()');
    assert.equal(queuedBytes(server, handle), 0, 'the kernel took every byte');
    assert.equal((await received).toString(), 'onetwosix');
  } finally {
    await close();
  }
});

test('a socket that is not TCP (a Unix socket) is always written through socket.write()', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'beacon-direct-'));
  const { server, client, close } = await connect({ path: join(dir, 'sock') });
  try {
    const handle = directWriteHandle(server);
    assert.equal(handle, undefined);
    const received = readBytes(client, 3);
    assert.equal(countWrites(server, () => writeToSocket(server, handle, Buffer.from('abc'))), 1);
    assert.equal((await received).toString(), 'abc');
  } finally {
    await close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('corked, holding bytes, or with an idle timeout: written through socket.write(), in order', async () => {
  const { server, client, close } = await connect({ port: 0 });
  try {
    const handle = directWriteHandle(server);
    const received = readBytes(client, 4);
    server.cork();
    assert.equal(countWrites(server, () => writeToSocket(server, handle, Buffer.from('a'))), 1, 'corked');
    assert.ok(server.writableLength > 0);
    assert.equal(countWrites(server, () => writeToSocket(server, handle, Buffer.from('b'))), 1, 'holding bytes');
    server.uncork();
    server.setTimeout(60_000);
    assert.equal(countWrites(server, () => writeToSocket(server, handle, Buffer.from('c'))), 1, 'an idle timeout to refresh');
    server.setTimeout(0);
    assert.equal(countWrites(server, () => writeToSocket(server, handle, Buffer.from('d'))), 0, 'plain again');
    assert.equal((await received).toString(), 'abcd');
  } finally {
    await close();
  }
});

test('bytes Node holds (a socket still connecting): a frame goes through socket.write(), behind them', async () => {
  const listener = createServer();
  listener.listen({ port: 0, host: '127.0.0.1' });
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[Socket]>;
  const client = createConnection((listener.address() as AddressInfo).port, '127.0.0.1');
  try {
    client.write('first');
    assert.ok(client.writableLength > 0, 'Node sent it before the connection was up');
    assert.equal(countWrites(client, () => writeToSocket(client, directWriteHandle(client), Buffer.from('second'))), 1);
    const [server] = await accepted;
    assert.equal((await readBytes(server, 11)).toString(), 'firstsecond');
    server.destroy();
  } finally {
    client.destroy();
    listener.close();
    await once(listener, 'close');
  }
});

test('a frame the kernel takes only part of: the rest is held, counted, and leaves before later writes', async () => {
  const { server, client, close } = await connect({ port: 0 });
  try {
    const handle = directWriteHandle(server)!;
    client.pause();
    // Bounded: 64 × 1 MiB is far more than loopback socket buffers hold; each frame's bytes name it.
    const frames: Buffer[] = [];
    for (let i = 0; i < 64 && handle.writeQueueSize === 0; i++) {
      const frame = Buffer.alloc(1 << 20, 0x41 + (i % 26));
      frames.push(frame);
      writeToSocket(server, handle, frame);
    }
    assert.ok(handle.writeQueueSize > 0, 'the kernel took every frame whole');
    assert.equal(server.writableLength, 0, 'Node holds none of it');
    assert.equal(queuedBytes(server, handle), handle.writeQueueSize, 'what libuv holds is counted');
    const later = Buffer.from('after');
    assert.equal(countWrites(server, () => writeToSocket(server, handle, later)), 1, 'behind a queued rest, through Node');
    // Node's own write, queued last: its callback says that libuv is done with everything before it.
    const last = Buffer.from('last');
    const done = new Promise<void>((resolve, reject) => server.write(last, (error) => (error ? reject(error) : resolve())));
    const expected = Buffer.concat([...frames, later, last]);
    const received = readBytes(client, expected.length);
    client.resume();
    assert.ok((await received).equals(expected), 'bytes arrived out of order or changed');
    await within(done, 'the last write done');
    assert.equal(handle.writeQueueSize, 0);
    assert.equal(countWrites(server, () => writeToSocket(server, handle, Buffer.from('x'))), 0, 'direct again once drained');
  } finally {
    await close();
  }
});

test('a peer that reset the connection: a direct write refused at once ends the socket', async () => {
  const { server, client, close } = await connect({ port: 0 });
  try {
    const handle = directWriteHandle(server);
    // Not reading, so Node does not see the reset before the write does.
    stopReading(server);
    client.resetAndDestroy();
    await once(client, 'close');
    const closed = once(server, 'close');
    writeToSocket(server, handle, Buffer.from('to nobody'));
    await within(closed, 'the socket closed');
    assert.equal(server.destroyed, true);
  } finally {
    await close();
  }
});

test('a peer that reset the connection while the rest of a frame was queued: the failed write ends the socket', async () => {
  const { server, client, close } = await connect({ port: 0 });
  try {
    const handle = directWriteHandle(server)!;
    stopReading(server);
    client.pause();
    for (let i = 0; i < 64 && handle.writeQueueSize === 0; i++) writeToSocket(server, handle, Buffer.alloc(1 << 20, 0x61));
    assert.ok(handle.writeQueueSize > 0, 'the kernel took every frame whole');
    const closed = once(server, 'close');
    client.resetAndDestroy();
    await within(closed, 'the socket closed');
    assert.equal(server.destroyed, true);
  } finally {
    await close();
  }
});

test('deprecations made fatal (--throw-deprecation --pending-deprecation): no direct writes, and the process lives', async () => {
  // process.binding warns under --pending-deprecation, and --throw-deprecation throws that warning on the next tick,
  // where no catch of the module reaches it: loading the module ended the process before it looked at throwDeprecation.
  const module = new URL('../../src/transport/direct-write.ts', import.meta.url).href;
  const child = `
    const { directWriteHandle, writeToSocket } = await import(${JSON.stringify(module)});
    const net = await import('node:net');
    let handle, client;
    const listener = net.createServer((peer) => peer.on('data', (bytes) => {
      console.log(JSON.stringify({ direct: handle !== undefined, read: bytes.toString() }));
      peer.destroy(); client.destroy(); listener.close();
    })).listen(0, '127.0.0.1');
    listener.on('listening', () => {
      client = net.connect(listener.address().port, '127.0.0.1', () => {
        handle = directWriteHandle(client);
        writeToSocket(client, handle, Buffer.from('frame'));
      });
    });`;
  const args = ['--pending-deprecation', '--throw-deprecation', '--import', 'tsx', '--input-type=module', '-e', child];
  const { stdout, stderr } = await promisify(execFile)(process.execPath, args, { timeout: 20_000 });
  assert.deepEqual(JSON.parse(stdout), { direct: false, read: 'frame' });
  assert.doesNotMatch(stderr, /DEP0111|DeprecationWarning/);
});
