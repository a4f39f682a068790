/**
 * Frames the installed `ws` refuses and closes on, sent raw by a peer to a real ws server whose socket a Connection owns
 * as ws-route.ts wires it: `connection_closed`, the `message_rejected` line and the metric reason must tell the close
 * code ws put on the wire. If a ws upgrade changes a code or adds an error, these tests fail instead of the log lying.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { ownSocketErrors } from '../../src/transport/upgrade-leftovers.js';
import { maxBufferedReads, maxMessageFragments, wsServerOptions } from '../../src/transport/ws-options.js';
import { capturedLogger, recordingMetrics, unitConnection } from '../helpers/unit.js';
import { within } from '../helpers/wait.js';

/** The MAX_PAYLOAD_BYTES Beacon's options are derived from here (its default). */
const MAX_PAYLOAD_BYTES = 100_000;

/** A masked client frame header with no payload (the mask key all zeros): `first` is FIN/opcode, `length` the rest. */
const header = (first: number, length: number[]): Buffer => Buffer.from([first, 0x80 | length[0]!, ...length.slice(1), 0, 0, 0, 0]);

/**
 * Sends `bytes` raw on a client's socket to a ws server (Beacon's options, as app.ts hands them to @fastify/websocket)
 * whose connection is a Connection, and resolves once the server side finished: the close code the client received, the lines, the metrics.
 */
async function refused(bytes: Buffer): Promise<{ wire: number; lines: Record<string, unknown>[]; calls: string[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...wsServerOptions(MAX_PAYLOAD_BYTES) });
  await once(wss, 'listening');
  const { logger, lines } = capturedLogger('info');
  const { metrics, calls } = recordingMetrics();
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  // Not events.once for the closes: it rejects on the 'error' that ws emits for the refused frame.
  client.on('error', () => {});
  const clientClosed = new Promise<number>((resolve) => client.on('close', resolve));
  await once(client, 'open');
  const [server] = await accepted;
  const connection = unitConnection(server, { logger, metrics });
  ownSocketErrors(server, (err) => connection.socketFailed(err));
  const finished = new Promise<void>((resolve) =>
    server.on('close', (code: number) => {
      connection.finish(code);
      resolve();
    }),
  );
  try {
    (client as unknown as { _socket: Socket })._socket.write(bytes);
    const [wire] = await within(Promise.all([clientClosed, finished]), 'the refused frame to close both ends');
    return { wire, lines, calls };
  } finally {
    client.terminate();
    wss.close();
  }
}

test('a 64-bit payload length over 2^53 - 1 is closed 1009 by ws, and reported 1009 too_large', async () => {
  // FIN + text, length 127: the next 8 bytes are the length, here with its top bit set.
  const { wire, lines, calls } = await refused(header(0x81, [127, 0x80, 0, 0, 0, 0, 0, 0, 0]));
  assert.equal(wire, 1009);
  const rejected = lines.filter((l) => l.event === 'message_rejected').map((l) => [l.reason, l.code, l.error]);
  assert.deepEqual(rejected, [['too_large', 1009, 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH']]);
  const closed = lines.filter((l) => l.event === 'connection_closed').map((l) => [l.reason, l.code, l.error]);
  assert.deepEqual(closed, [['protocol_error', 1009, 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH']]);
  assert.deepEqual(calls.filter((c) => c.startsWith('messageError')), ['messageError(app-id, too_large)']);
});

test('a message in more fragments than Beacon lets ws buffer is closed 1008 by ws, and reported 1008 too_large', async () => {
  // A text frame without FIN, then as many empty continuations without FIN: the last one is one too many.
  const limit = maxMessageFragments(MAX_PAYLOAD_BYTES);
  const fragments = [header(0x01, [0]), ...Array.from({ length: limit }, () => header(0x00, [0]))];
  const { wire, lines, calls } = await refused(Buffer.concat(fragments));
  assert.equal(wire, 1008);
  const closed = lines.filter((l) => l.event === 'connection_closed').map((l) => [l.reason, l.code, l.error]);
  assert.deepEqual(closed, [['protocol_error', 1008, 'WS_ERR_TOO_MANY_BUFFERED_PARTS']]);
  assert.deepEqual(calls.filter((c) => c.startsWith('messageError')), ['messageError(app-id, too_large)']);
  // No error-level line: the peer's fault.
  assert.deepEqual(lines.filter((l) => l.level === 'error'), []);
});

/** ws's frame parser (the package exports it; @types/ws does not list it): fed reads one by one, as a socket would. */
const { Receiver } = createRequire(import.meta.url)('ws') as {
  Receiver: new (options: Record<string, unknown>) => NodeJS.WritableStream & { on(event: 'error', f: (e: Error & { code?: string }) => void): void };
};

test('a frame trickled in more reads than Beacon lets ws buffer is refused 1008 once past the bound, not held whole', async () => {
  // ws keeps every read of a frame's payload until the frame is whole, ~220 bytes of heap each whatever its size: a frame
  // announced at 150 000 bytes and sent one byte per TCP segment held 8.8 MB per 40 000 bytes with ws's default bound
  // (262 144 reads). Each read here is written to the parser as the socket would hand it over.
  const options = wsServerOptions(MAX_PAYLOAD_BYTES);
  assert.equal(options.maxBufferedChunks, maxBufferedReads(MAX_PAYLOAD_BYTES));
  const receiver = new Receiver({ isServer: true, maxPayload: options.maxPayload, maxBufferedChunks: options.maxBufferedChunks });
  const failed = new Promise<Error & { code?: string }>((resolve) => receiver.on('error', resolve));
  const length = 150_000;
  receiver.write(Buffer.from([0x81, 0x80 | 127, 0, 0, 0, 0, (length >>> 24) & 255, (length >>> 16) & 255, (length >>> 8) & 255, length & 255]));
  receiver.write(Buffer.from([0, 0, 0, 0]));
  let reads = 0;
  let error: (Error & { code?: string }) | undefined;
  void failed.then((e) => (error = e));
  while (error === undefined && reads < length) {
    receiver.write(Buffer.from('x'));
    reads++;
    // A write the parser refuses reports its error asynchronously (Writable's error handling): let it through.
    if (reads % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await within(failed, 'the parser to refuse the trickled frame');
  assert.equal(error?.code, 'WS_ERR_TOO_MANY_BUFFERED_PARTS');
  assert.ok(reads <= options.maxBufferedChunks + 64, `refused after ${reads} reads, bound ${options.maxBufferedChunks}`);
});

test('a frame with a reserved opcode stays 1002 invalid_frame, as ws sends it', async () => {
  const { wire, lines } = await refused(header(0x83, [0]));
  assert.equal(wire, 1002);
  const closed = lines.filter((l) => l.event === 'connection_closed').map((l) => [l.reason, l.code, l.error]);
  assert.deepEqual(closed, [['protocol_error', 1002, 'WS_ERR_INVALID_OPCODE']]);
});
