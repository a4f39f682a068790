/**
 * The baseline: a minimal broadcast server on bare `ws`. Every connection is a subscriber of the one room; a message is
 * parsed once, encoded once to a Buffer and written to every other connection (the least a real server can do: validate, then
 * fan out the same bytes). Publishes arrive as a WebSocket message (client-event scenario) or as `POST /publish`
 * (HTTP scenario), both `{"event","data"}`. Loopback only; PORT from the environment.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

const port = Number(process.env.PORT);
const TEXT = { binary: false } as const;
const READY = Buffer.from(JSON.stringify({ event: 'subscribed' }));
const room = new Set<WebSocket>();

function broadcast(message: { event: string; data: unknown }, except: WebSocket | undefined): void {
  const frame = Buffer.from(JSON.stringify({ event: message.event, data: message.data }));
  for (const socket of room) if (socket !== except) socket.send(frame, TEXT);
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/readyz') {
    res.end('ok');
    return;
  }
  if (req.method !== 'POST' || req.url !== '/publish') {
    res.statusCode = 404;
    res.end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    try {
      broadcast(JSON.parse(Buffer.concat(chunks).toString()) as { event: string; data: unknown }, undefined);
      res.end('{}');
    } catch {
      res.statusCode = 400;
      res.end();
    }
  });
});

const wss = new WebSocketServer({ server });
wss.on('connection', (socket) => {
  room.add(socket);
  socket.on('close', () => room.delete(socket));
  socket.on('message', (data) => {
    try {
      broadcast(JSON.parse(data.toString()) as { event: string; data: unknown }, socket);
    } catch {
      // A malformed frame is dropped.
    }
  });
  socket.send(READY, TEXT);
});

server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => process.exit(0));
