/**
 * The HTTP side of the comparison servers on Node's own `http` (bench/fanout/ws-server.ts, socketio-server.ts): `GET
 * /readyz` answers `ok`, `POST /publish` hands its JSON body — `{"room"?, "event", "data"}` or `{"batch": [...]}` — to
 * the server's `publish`, which fans it out; anything else is 404, a body that is not JSON or not a publish 400.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** One message to a room (the bench's `bench` by default). */
export interface Message {
  room?: string;
  event: string;
  data: unknown;
}

/** The messages of a publish body, or undefined when it is none. */
export function messagesOf(body: unknown): Message[] | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  return 'batch' in body ? (body as { batch: Message[] }).batch : [body as Message];
}

/** A request handler for `http.createServer` that answers /readyz and hands each publish's messages to `publish`. */
export function publishHandler(publish: (messages: Message[]) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
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
      let messages: Message[] | undefined;
      try {
        messages = messagesOf(JSON.parse(Buffer.concat(chunks).toString()));
        if (messages !== undefined) publish(messages);
      } catch {
        messages = undefined;
      }
      if (messages !== undefined) res.end('{}');
      else {
        res.statusCode = 400;
        res.end();
      }
    });
  };
}
