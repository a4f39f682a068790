/**
 * A webhook receiver on a free loopback port: records every request (headers and raw body) and answers with the statuses
 * it is told to (200 once the list is used up). Tests await requests and events as they arrive, never sleep.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebhookEvent } from '../../src/webhooks/webhook-event.js';
import { within } from './wait.js';

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  raw: string;
  body: { time_ms: number; events: WebhookEvent[] };
}

export interface WebhookReceiver {
  url: string;
  requests: ReceivedWebhook[];
  /** Answers the next requests with these statuses, in order. */
  respondWith(...statuses: number[]): void;
  /** The `n`-th request (1-based), already received or still to come. */
  request(n: number, timeoutMs?: number): Promise<ReceivedWebhook>;
  /** The first event (received or to come) for which `match` holds, with its request. */
  event(
    match: (e: WebhookEvent) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<{ request: ReceivedWebhook; event: WebhookEvent }>;
  /** Every event received so far, in arrival order. */
  events(): WebhookEvent[];
  close(): Promise<void>;
}

/** Whether `X-Pusher-Signature` is the hex HMAC-SHA256 of the raw body under `secret`, as a receiver checks it. */
export function signatureValid(request: ReceivedWebhook, secret: string): boolean {
  const given = Buffer.from(String(request.headers['x-pusher-signature'] ?? ''), 'utf8');
  const expected = Buffer.from(createHmac('sha256', secret).update(request.raw).digest('hex'), 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const requests: ReceivedWebhook[] = [];
  const statuses: number[] = [];
  const arrived = new EventEmitter();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const status = statuses.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(String(status));
      requests.push({ headers: req.headers, raw, body: JSON.parse(raw) as ReceivedWebhook['body'] });
      arrived.emit('request');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  function waitFor<T>(find: () => T | undefined, what: string, timeoutMs?: number): Promise<T> {
    const found = find();
    if (found !== undefined) return Promise.resolve(found);
    let listener: (() => void) | undefined;
    const promise = new Promise<T>((resolve) => {
      listener = () => {
        const f = find();
        if (f !== undefined) resolve(f);
      };
      arrived.on('request', listener);
    });
    return within(promise, what, timeoutMs).finally(() => {
      if (listener !== undefined) arrived.off('request', listener);
    });
  }

  return {
    url: `http://127.0.0.1:${port}/webhooks`,
    requests,
    respondWith(...s) {
      statuses.push(...s);
    },
    request(n, timeoutMs) {
      return waitFor(() => requests[n - 1], `webhook request #${n}`, timeoutMs);
    },
    event(match, what, timeoutMs) {
      return waitFor(
        () => {
          for (const request of requests) {
            const event = request.body.events.find(match);
            if (event !== undefined) return { request, event };
          }
          return undefined;
        },
        `webhook event ${what}`,
        timeoutMs,
      );
    },
    events() {
      return requests.flatMap((r) => r.body.events);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
