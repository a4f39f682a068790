/**
 * The HTTP server under fastify (its `serverFactory`): Node's `http.Server` with the timeouts of HTTP_REQUEST_TIMEOUT_MS,
 * and a guard in front of fastify's handler for what Node would otherwise answer or do on its own, outside the error
 * registry and uncounted:
 *
 * - **Pipelined requests sent ahead of their answers.** Node parses every request of a read (up to 64 KiB, some 1500 small
 *   requests) at once and hands each to the handler; it stops reading only once the socket's writes back up, and on
 *   loopback or a fast link the kernel takes megabytes of answers first. One socket that writes 20 000 `GET /healthz` and
 *   never reads had them all served: 50 such sockets held the event loop for 18 s and added 220 MB of RSS. A socket may
 *   have MAX_REQUESTS_AHEAD requests unanswered; the next one is answered 429 `API_TOO_MANY_PIPELINED` with
 *   `Connection: close`, after the answers before it, and nothing more is read from the socket or served. The rest of
 *   that read is refused unserved, counted, and answered by the connection's close. No HTTP client pipelines by default
 *   (browsers and the `pusher` SDKs do not; undici only when asked).
 * - **An HTTP/1.1 request without `Host`** (RFC 9112 §3.2): Node's answer was an empty 400. Now `API_HOST_REQUIRED`.
 * - **`Expect` other than `100-continue`:** Node's answer was an empty 417. Now `API_EXPECTATION_FAILED`, and the
 *   connection closed (the body it announced is not read).
 * - **`CONNECT`:** Node destroyed the socket without a word. Now 405 `API_METHOD_NOT_ALLOWED` on the socket, then closed.
 *
 * Each is counted in `websocket_http_malformed_requests_total` under its reason and logged as `request_malformed`
 * (client-errors.ts: at most 10 lines a second per node; a pipelining socket's refusal is logged once).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Errors, type HttpError } from '../protocol/errors.js';
import type { Metrics } from '../telemetry/metrics.js';
import { loggedAddress } from './client-address.js';
import type { RefusedRequest } from './client-errors.js';
import { API_CORS } from './cors-options.js';
import { answerOnResponse, answerOnSocket, lingerAfterLast } from './raw-answer.js';

/** Requests a socket may have sent ahead of its answers (the one being served included). */
export const MAX_REQUESTS_AHEAD = 16;

/** The timeouts fastify would give the server it builds itself (app.ts passes them). */
export interface HttpServerTimeouts {
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** How often Node checks requestTimeout and headersTimeout. */
  checkIntervalMs: number;
}

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/** A socket's requests not yet answered, and whether it was refused for sending too many. */
interface AheadCount {
  unanswered: number;
  refused: boolean;
  /** The socket's latest request: while its body is still arriving, a parser error is about it. */
  latest: IncomingMessage | undefined;
  /**
   * The answer to a request the parser refused after others still unanswered: written once no more than `afterPendingAt`
   * are left unanswered (`answerAfterPending`).
   */
  afterPending: (() => void) | undefined;
  afterPendingAt: number;
}

/** How long a parser's refusal waits for the answers before it at most (they are bounded by their own deadlines anyway). */
const REFUSAL_WAIT_MAX_MS = 10_000;

/** Per socket, its requests (module-wide: the parser's refusals, client-errors.ts, look up what is still being answered). */
const ahead = new WeakMap<Socket, AheadCount>();

/** Whether a refusal of what `socket` sent waits for the answers before it (`answerAfterPending`). */
export function refusalWaits(socket: Socket): boolean {
  return ahead.get(socket)?.afterPending !== undefined;
}

/**
 * Whether the parser's refusal of what `socket` sent must wait for the answers of requests before it: some were received
 * and are not answered yet (pipelined: the refused one came after them). Then `answer` runs once they are (at most
 * REFUSAL_WAIT_MAX_MS later), and the socket is read no further meanwhile; written at once, it cut their answers off (a
 * publish delivered, its 200 never written: a backend retries it). When the refused bytes are the body of the latest
 * request (still arriving), that request is the one refused: its handler waits for a body that will not come, so the
 * answer goes once the requests before it are answered, and its handler's answer finds the socket closed. False when
 * nothing before the refused request waits for an answer. True, and `answer` dropped, when an answer already waits: the
 * parser reports a refused request again for every later read.
 */
export function answerAfterPending(socket: Socket, answer: () => void): boolean {
  const count = ahead.get(socket);
  if (count === undefined || count.afterPending !== undefined) return count !== undefined;
  const refusedIsServed = count.latest?.complete === false ? 1 : 0;
  if (count.unanswered <= refusedIsServed) return false;
  const timer = setTimeout(() => run(), REFUSAL_WAIT_MAX_MS).unref();
  const run = (): void => {
    clearTimeout(timer);
    count.afterPending = NOTHING_WAITS;
    answer();
  };
  count.afterPending = run;
  count.afterPendingAt = refusedIsServed;
  socket.pause();
  return true;
}

/** An answer already written: later parser errors of the socket wait for nothing more. */
const NOTHING_WAITS = (): void => undefined;

const ALLOW = `Allow: ${(API_CORS.methods as string[]).join(', ')}`;

/** fastify's `serverFactory`: the HTTP/1.1 server, with the guard of this module in front of `handler`. */
export function httpServerFactory(
  timeouts: HttpServerTimeouts,
  deps: GuardDeps,
): (handler: Handler) => Server {
  return (handler) => {
    const server = createServer(
      {
        requestTimeout: timeouts.requestTimeoutMs,
        headersTimeout: timeouts.requestTimeoutMs,
        connectionsCheckingInterval: timeouts.checkIntervalMs,
        // Checked by the guard, which answers from the registry.
        requireHostHeader: false,
      },
      guard(handler, deps),
    );
    server.keepAliveTimeout = timeouts.keepAliveTimeoutMs;
    server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
      refuse(deps, 'expectation', Errors.API_EXPECTATION_FAILED, request);
      answerOnResponse(response, Errors.API_EXPECTATION_FAILED, Errors.API_EXPECTATION_FAILED.message);
    });
    server.on('connect', (request: IncomingMessage, socket: Duplex) => {
      refuse(deps, 'bad_method', Errors.API_METHOD_NOT_ALLOWED, request);
      answerOnSocket(socket, Errors.API_METHOD_NOT_ALLOWED, Errors.API_METHOD_NOT_ALLOWED.message, [ALLOW]);
    });
    return server;
  };
}

/**
 * What the guard needs: `addressOf` is the client's address of a request under TRUST_PROXY (client-address.ts), so a
 * refused request behind a proxy is logged with the client the proxy names, as the API's own refusals are.
 */
interface GuardDeps {
  refused: RefusedRequest;
  metrics: Metrics;
  addressOf: (request: IncomingMessage) => string | undefined;
}

function refuse(deps: GuardDeps, reason: Parameters<RefusedRequest>[0], error: HttpError, request: IncomingMessage): void {
  deps.refused(reason, error, { error: error.name, remote_address: loggedAddress(deps.addressOf(request)) });
}

function guard(handler: Handler, deps: GuardDeps): Handler {
  const tooMany = Errors.API_TOO_MANY_PIPELINED.format(MAX_REQUESTS_AHEAD);
  return (request, response) => {
    const socket = request.socket;
    let count = ahead.get(socket);
    if (count === undefined) {
      count = { unanswered: 0, refused: false, latest: undefined, afterPending: undefined, afterPendingAt: 0 };
      ahead.set(socket, count);
    }
    if (count.refused) {
      // The rest of a read after the refusal: not served, and never answered (the connection closes after the 429).
      deps.metrics.httpMalformed('pipelined');
      return;
    }
    if (count.unanswered >= MAX_REQUESTS_AHEAD) {
      count.refused = true;
      refuse(deps, 'pipelined', Errors.API_TOO_MANY_PIPELINED, request);
      lingerAfterLast(socket);
      answerOnResponse(response, Errors.API_TOO_MANY_PIPELINED, tooMany);
      return;
    }
    if (request.httpVersionMajor === 1 && request.httpVersionMinor === 1 && request.headers.host === undefined) {
      refuse(deps, 'no_host', Errors.API_HOST_REQUIRED, request);
      answerOnResponse(response, Errors.API_HOST_REQUIRED, Errors.API_HOST_REQUIRED.message);
      return;
    }
    const counted = count;
    counted.unanswered += 1;
    counted.latest = request;
    response.once('close', () => {
      counted.unanswered -= 1;
      if (counted.afterPending !== undefined && counted.unanswered <= counted.afterPendingAt) counted.afterPending();
    });
    handler(request, response);
  };
}
