/**
 * The upgrade's answer leaves in one write (src/transport/ws-route.ts corks the socket until the handler answered): the
 * `101 Switching Protocols` head and `pusher:connection_established` — or, for a refused key, the head and the 4001
 * error — go to the kernel in one system call instead of one each. Seen from the server's side: every write the
 * upgraded socket hands to its handle (`_writeGeneric`, what both `_write` and `_writev` of a net.Socket call; the test
 * fails if a Node release renames it) is recorded.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { startServer } from '../helpers/server.js';
import { within } from '../helpers/wait.js';

type Chunk = Buffer | string | { chunk: Buffer | string };
interface WritableSocket {
  _writeGeneric(writev: boolean, data: Chunk | Chunk[], encoding: string, cb: () => void): void;
}

/** Records each system-call-level write of every socket the server upgrades, as the text it carried. */
function recordUpgradeWrites(server: import('node:http').Server): string[][] {
  const writes: string[][] = [];
  // Before @fastify/websocket's listener: it may answer within the same emit (no hook of the route defers it).
  server.prependListener('upgrade', (_req, socket: Socket) => {
    const s = socket as unknown as WritableSocket;
    assert.equal(typeof s._writeGeneric, 'function', 'net.Socket writes through _writeGeneric');
    const original = s._writeGeneric.bind(s);
    const mine: string[] = [];
    writes.push(mine);
    s._writeGeneric = (writev, data, encoding, cb) => {
      const parts = writev ? (data as Chunk[]) : [data as Chunk];
      mine.push(parts.map((p) => (typeof p === 'object' && 'chunk' in p ? p.chunk : p).toString()).join(''));
      original(writev, data, encoding, cb);
    };
  });
  return writes;
}

/** Sends an upgrade request for `path` and resolves once the server's answer (head and first frame) arrived. */
async function upgrade(port: number, path: string, expect: RegExp): Promise<void> {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  try {
    const answered = new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
        if (expect.test(received)) resolve();
      });
    });
    socket.once('connect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    await within(answered, `the answer on ${path}`);
  } finally {
    socket.destroy();
  }
}

test('the 101 head and connection_established (or the refusal) leave the server in one write', async () => {
  const server = await startServer();
  const writes = recordUpgradeWrites(server.app.fastify.server);
  try {
    await upgrade(server.port, '/app/app-key?protocol=7', /connection_established/);
    await upgrade(server.port, '/app/no-such-key?protocol=7', /"code":4001/);
    await upgrade(server.port, '/nowhere', /"code":4005/);
    assert.equal(writes.length, 3);
    const [accepted, refused, unknownPath] = writes.map((w) => w[0] ?? '');
    assert.match(accepted!, /^HTTP\/1\.1 101 [^]*pusher:connection_established/, JSON.stringify(writes[0]));
    assert.match(refused!, /^HTTP\/1\.1 101 [^]*"code":4001/, JSON.stringify(writes[1]));
    assert.match(unknownPath!, /^HTTP\/1\.1 101 [^]*"code":4005/, JSON.stringify(writes[2]));
  } finally {
    await server.close();
  }
});
