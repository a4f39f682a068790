/**
 * A WebSocket client that does the opening handshake by hand over a raw TCP socket and then never writes again: it never
 * answers a close frame (nor a ping), as a broken or hostile client would. What the server sends is kept as raw bytes.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { within } from './wait.js';

/** A raw socket after its upgrade request. */
export interface SilentSocket {
  socket: Socket;
  /** Every byte the server sent, the HTTP response head included. */
  received(): Buffer;
  /** Resolves when the server (or the network) ended the TCP connection. */
  ended: Promise<void>;
  destroy(): void;
}

/**
 * Opens `path` on 127.0.0.1:`port` and resolves once the server's response head (101 or an error) arrived. `headers` add
 * to or replace the request's (a broken `Sec-WebSocket-Key` or `Sec-WebSocket-Version`).
 */
export async function silentSocket(port: number, path: string, headers: Record<string, string> = {}): Promise<SilentSocket> {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const head = new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (Buffer.concat(chunks).includes('\r\n\r\n')) resolve();
    });
  });
  socket.on('error', () => undefined);
  const request = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  const lines = Object.entries(request).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.once('connect', () => socket.write(`GET ${path} HTTP/1.1\r\n${lines.join('')}\r\n`));
  await within(head, `the upgrade response on ${path}`);
  return { socket, received: () => Buffer.concat(chunks), ended, destroy: () => socket.destroy() };
}
