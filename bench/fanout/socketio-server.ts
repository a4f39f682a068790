/**
 * The Socket.IO comparison: a minimal server with rooms. A client joins a room (default `bench`) with an acknowledged
 * `join`; a publish is `socket.to(room).emit` (client-event scenario: never echoed to the sender) or `io.to(room).emit` from
 * `POST /publish` `{"room"?, "event", "data"}` or `{"batch": [...]}`. WebSocket transport only, so no long-polling handshake
 * is measured. Loopback only; PORT from the environment.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const port = Number(process.env.PORT);
const ROOM = 'bench';

interface Message {
  room?: string;
  event: string;
  data: unknown;
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/readyz') {
    res.end('ok');
    return;
  }
  // Socket.IO answers its own path (/socket.io/) before this handler is called.
  if (req.method !== 'POST' || req.url !== '/publish') {
    res.statusCode = 404;
    res.end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as Message | { batch: Message[] };
      for (const message of 'batch' in body ? body.batch : [body]) io.to(message.room ?? ROOM).emit(message.event, message.data);
      res.end('{}');
    } catch {
      res.statusCode = 400;
      res.end();
    }
  });
});

const io = new Server(server, { transports: ['websocket'], serveClient: false });
io.on('connection', (socket) => {
  let room = ROOM;
  socket.on('join', (name: string | (() => void), ack?: () => void) => {
    if (typeof name === 'function') {
      ack = name;
    } else {
      room = name;
    }
    void socket.join(room);
    ack?.();
  });
  socket.on('publish', (message: Message) => {
    socket.to(room).emit(message.event, message.data);
  });
});

server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => process.exit(0));
