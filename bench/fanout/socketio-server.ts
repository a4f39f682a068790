/**
 * The Socket.IO comparison: a minimal server with rooms. A client joins the room with an acknowledged `join`; a publish is
 * `socket.to(room).emit` (client-event scenario: never echoed to the sender) or `io.to(room).emit` from `POST /publish`
 * (HTTP scenario). WebSocket transport only, so no long-polling handshake is measured. Loopback only; PORT from the environment.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const port = Number(process.env.PORT);
const ROOM = 'bench';

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
      const message = JSON.parse(Buffer.concat(chunks).toString()) as { event: string; data: unknown };
      io.to(ROOM).emit(message.event, message.data);
      res.end('{}');
    } catch {
      res.statusCode = 400;
      res.end();
    }
  });
});

const io = new Server(server, { transports: ['websocket'], serveClient: false });
io.on('connection', (socket) => {
  socket.on('join', (ack: () => void) => {
    void socket.join(ROOM);
    ack();
  });
  socket.on('publish', (message: { event: string; data: unknown }) => {
    socket.to(ROOM).emit(message.event, message.data);
  });
});

server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => process.exit(0));
