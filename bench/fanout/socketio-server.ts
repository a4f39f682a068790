/**
 * The Socket.IO comparison: a minimal server with rooms. A client joins a room (default `bench`) with an acknowledged
 * `join`; a publish is `socket.to(room).emit` (client-event scenario: never echoed to the sender) or `io.to(room).emit` from
 * `POST /publish` `{"room"?, "event", "data"}` or `{"batch": [...]}`. WebSocket transport only, so no long-polling handshake
 * is measured. Loopback only; PORT from the environment.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { publishHandler, type Message } from './publish-http.js';

const port = Number(process.env.PORT);
const ROOM = 'bench';

// Socket.IO answers its own path (/socket.io/) before this handler is called.
const server = createServer(publishHandler((messages) => {
  for (const message of messages) io.to(message.room ?? ROOM).emit(message.event, message.data);
}));

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
