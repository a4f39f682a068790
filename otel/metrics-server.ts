/**
 * The metrics port's HTTP server, in front of the Prometheus exporter's handler (the exporter's own server is not
 * started). The exporter's server answered any method with the metrics and served every request a socket pipelined, one
 * render each: ten sockets that wrote 2 000 `GET /metrics` each and read nothing took 26 s of CPU and 600 MB, and the
 * main port's requests waited seconds meanwhile (the port listens on 0.0.0.0 by default). Here:
 * - `GET` / `HEAD` of the endpoint render the metrics; another method gets 405 with `Allow`, another path 404;
 * - a socket gets one request answered at a time: one sent before the answer to the previous is refused (429,
 *   `Connection: close`) and the socket closed after it, so a pipelined flood costs one render, not one per request;
 * - a request must arrive within REQUEST_TIMEOUT_MS (Node's default waits 5 minutes for a request that never completes).
 * Refusals are counted in `websocket_metrics_requests_refused_total{reason}` and reported on stderr at most once a minute.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { diag, metrics } from '@opentelemetry/api';
import type { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { lingerAfterLast } from '../src/http/raw-answer.js';
import { hostPort } from '../src/listen-address.js';

const REQUEST_TIMEOUT_MS = 10_000;
const REPORT_EVERY_MS = 60_000;
const ALLOWED = 'GET, HEAD';

/** Why the metrics server refused a request. */
type Refusal = 'pipelined' | 'bad_method';

export interface MetricsServerOptions {
  host: string;
  port: number;
  /** The exporter's endpoint path (`/metrics`). */
  endpoint?: string;
}

/**
 * Starts serving `exporter`'s metrics; resolves once it listens, rejects with the listen error (a taken port, an address
 * this host does not have): the caller decides whether the process may run without /metrics. The server does not keep the
 * process alive. Call after the SDK started.
 */
export async function startMetricsServer(exporter: PrometheusExporter, options: MetricsServerOptions): Promise<Server> {
  const endpoint = options.endpoint ?? '/metrics';
  const refused: Record<Refusal, number> = { pipelined: 0, bad_method: 0 };
  const counter = metrics.getMeter('beacon-metrics-server').createObservableCounter('websocket_metrics_requests_refused_total', {
    description: 'Requests the metrics port refused, by reason',
  });
  counter.addCallback((result) => {
    for (const reason of Object.keys(refused) as Refusal[]) result.observe(refused[reason], { reason });
  });
  let reportedAt = -Infinity;
  const refuse = (reason: Refusal, response: ServerResponse, status: number, headers: Record<string, string> = {}): void => {
    refused[reason]++;
    const now = performance.now();
    if (now - reportedAt >= REPORT_EVERY_MS) {
      reportedAt = now;
      diag.warn(`metrics server: a request refused (${reason}); counted in websocket_metrics_requests_refused_total`);
    }
    response.writeHead(status, { ...headers, 'Content-Length': '0' }).end();
  };

  /** Sockets with a request being answered, and those refused for pipelining (closed once the refusal is written). */
  const busy = new WeakSet<Socket>();
  const closing = new WeakSet<Socket>();
  const onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    const socket = request.socket;
    if (closing.has(socket)) {
      // The rest of what it pipelined: counted, never rendered nor answered (the socket closes after the 429).
      refused.pipelined++;
      return;
    }
    if (busy.has(socket)) {
      // Sent before the answer to the one before it: refused, and nothing more is rendered for this socket.
      closing.add(socket);
      lingerAfterLast(socket);
      refuse('pipelined', response, 429, { Connection: 'close' });
      return;
    }
    const path = (request.url ?? '').split('?', 1)[0];
    if (path !== endpoint) {
      response.writeHead(404, { 'Content-Length': '0' }).end();
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      refuse('bad_method', response, 405, { Allow: ALLOWED });
      return;
    }
    busy.add(socket);
    response.once('close', () => busy.delete(socket));
    exporter.getMetricsRequestHandler(request, response);
  };

  const server = createServer(
    {
      requestTimeout: REQUEST_TIMEOUT_MS,
      headersTimeout: REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: REQUEST_TIMEOUT_MS / 4,
    },
    onRequest,
  ).unref();
  await listening(server, options);
  // Once it listens, a failure of the server is reported, not thrown: the main port goes on serving.
  server.on('error', (err) => diag.error(`metrics server on ${hostPort(options.host, options.port)} failed`, err));
  return server;
}

/** Resolves once `server` listens on the options' address; rejects with the error that kept it from listening. */
function listening(server: Server, { host, port }: MetricsServerOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
