/**
 * The baselines: a minimal broadcast server on bare `ws`. A connection goes through the same steps as a Pusher one, with the
 * least work each: the server greets it (`{"event":"connected"}`, as Beacon's `connection_established`), the client asks
 * to join a room (`{"event":"subscribe","room":…}`, as `pusher:subscribe`) and the server acknowledges
 * (`{"event":"subscribed"}`, as `subscription_succeeded`) — so connects/s compares the same round trips. A message is
 * parsed once, encoded once to a Buffer and written to every other connection of its room (the least a real server can
 * do: validate, then fan out the same bytes). Publishes arrive as a WebSocket message (client-event scenario), as
 * `POST /publish` `{"room"?, "event", "data"}` or `{"batch": [...]}` of those. Loopback only; PORT from the environment.
 *
 * RAW_WRITES=1 is the limit probe: each frame is built once (header and payload in one Buffer, with ws's own
 * `Sender.frame`) and written to each subscriber's TCP socket with one `write`, bypassing ws's per-socket framing.
 * RAW_WRITES=direct is the syscall floor: the same frame handed to each socket's TCP handle where Node would, skipping
 * Node's Writable too (Beacon's own src/transport/direct-write.ts), so what is left per subscriber is the `write` call.
 *
 * STACK=fastify is the stack's floor: the same server under fastify and @fastify/websocket, as Beacon runs (each upgrade
 * routed by fastify, its hooks and request objects, before ws's handshake; `POST /publish` a fastify route parsing its
 * JSON body), and nothing else. What Beacon costs over it is Beacon's own; what it costs over bare `ws` is the stack's.
 */
import fastifyWebsocket from '@fastify/websocket';
import Fastify from 'fastify';
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import * as wsModule from 'ws';
import { WebSocket, WebSocketServer } from 'ws';
import { directWriteHandle, writeToSocket, type StreamHandle } from '../../src/transport/direct-write.js';
import { messagesOf, publishHandler, type Message } from './publish-http.js';

const port = Number(process.env.PORT);
const raw = process.env.RAW_WRITES === '1' || process.env.RAW_WRITES === 'direct';
const direct = process.env.RAW_WRITES === 'direct';
/** Each subscriber's TCP handle, read once per connection (as Beacon's connections do). */
const handles = new WeakMap<WebSocket, StreamHandle | undefined>();
const TEXT = { binary: false } as const;
const WELCOME = Buffer.from(JSON.stringify({ event: 'connected' }));
const READY = Buffer.from(JSON.stringify({ event: 'subscribed' }));
const rooms = new Map<string, Set<WebSocket>>();
/** ws keeps the TCP socket in a private field; the probe writes to it directly. */
type WithSocket = WebSocket & { _socket: Socket };
/** ws exports its frame builder at run time (`WebSocket.Sender`); its types do not declare it. */
const { Sender } = wsModule as unknown as {
  Sender: { frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[] };
};

function broadcast(message: Message, except: WebSocket | undefined): void {
  const room = rooms.get(message.room ?? 'bench');
  if (room === undefined) return;
  const payload = Buffer.from(JSON.stringify({ event: message.event, data: message.data }));
  if (raw) {
    const frame = Buffer.concat(Sender.frame(payload, { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false }));
    if (direct) {
      for (const socket of room) {
        if (socket !== except && socket.readyState === WebSocket.OPEN) writeToSocket((socket as WithSocket)._socket, handles.get(socket), frame);
      }
    } else {
      for (const socket of room) if (socket !== except && socket.readyState === WebSocket.OPEN) (socket as WithSocket)._socket.write(frame);
    }
  } else {
    for (const socket of room) if (socket !== except) socket.send(payload, TEXT);
  }
}

/** A new connection: greeted, then its first frame is its join, every later one a client event to its room. */
function connected(socket: WebSocket): void {
  if (direct) handles.set(socket, directWriteHandle((socket as WithSocket)._socket));
  let joined: Set<WebSocket> | undefined;
  let name = 'bench';
  socket.on('close', () => {
    if (joined === undefined) return;
    joined.delete(socket);
    if (joined.size === 0) rooms.delete(name);
  });
  socket.on('message', (data) => {
    try {
      const message = JSON.parse(data.toString()) as Message;
      if (joined === undefined) {
        // The first frame is the join (any other frame before it is dropped).
        if (message.event !== 'subscribe') return;
        name = message.room ?? 'bench';
        let room = rooms.get(name);
        if (room === undefined) rooms.set(name, (room = new Set()));
        joined = room;
        joined.add(socket);
        socket.send(READY, TEXT);
        return;
      }
      broadcast({ ...message, room: name }, socket);
    } catch {
      // A malformed frame is dropped.
    }
  });
  socket.send(WELCOME, TEXT);
}

if (process.env.STACK === 'fastify') {
  const app = Fastify({ logger: false });
  await app.register(fastifyWebsocket);
  app.get('/readyz', async () => 'ok');
  app.post('/publish', async (request, reply) => {
    const messages = messagesOf(request.body);
    if (messages === undefined) return reply.code(400).send();
    for (const message of messages) broadcast(message, undefined);
    return '{}';
  });
  app.get('/*', { websocket: true }, (socket) => connected(socket));
  await app.listen({ port, host: '127.0.0.1' });
} else {
  const server = createServer(publishHandler((messages) => {
    for (const message of messages) broadcast(message, undefined);
  }));
  new WebSocketServer({ server }).on('connection', connected);
  server.listen(port, '127.0.0.1');
}
process.once('SIGTERM', () => process.exit(0));
