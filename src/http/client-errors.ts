/**
 * fastify's `clientErrorHandler`: a request Node's HTTP parser refused before any route could see it (a malformed request
 * line or header, headers over Node's 16 KiB, a request not received within the server's timeouts). fastify's own handler
 * answers these in its own shape and logs them at `trace`; here each gets the registry's answer (raw-answer.ts), is counted
 * in `websocket_http_malformed_requests_total` under its reason and logged as `request_malformed` (at most 10 lines a
 * second per node, shared with the router's refusals: params.ts). Upgrades and API calls alike: the parser refuses before
 * it is known which one a request is.
 */
import type { Socket } from 'node:net';
import { FixedWindow } from '../limits/fixed-window.js';
import { Errors, type HttpError } from '../protocol/errors.js';
import { logEvent } from '../telemetry/log-events.js';
import type { Logger } from '../telemetry/logger.js';
import type { MalformedRequestReason, Metrics } from '../telemetry/metrics.js';
import { answerAfterPending, refusalWaits } from './http-server.js';
import { loggedAddress } from './client-address.js';
import { answerOnSocket } from './raw-answer.js';

/** Node's code for a request its timeouts cut (`headersTimeout`, `requestTimeout`), and for headers over `maxHeaderSize`. */
const TIMEOUT = 'ERR_HTTP_REQUEST_TIMEOUT';
const HEADER_OVERFLOW = 'HPE_HEADER_OVERFLOW';

function refusalOf(code: string | undefined): [MalformedRequestReason, HttpError] {
  if (code === TIMEOUT) return ['timeout', Errors.API_REQUEST_TIMEOUT];
  if (code === HEADER_OVERFLOW) return ['header_overflow', Errors.API_HEADERS_TOO_LARGE];
  return ['bad_request', Errors.API_INVALID_REQUEST];
}

/** Counts a request refused before any route saw it under `reason` and logs it, at most 10 lines a second per node. */
export type RefusedRequest = (reason: MalformedRequestReason, error: HttpError, fields: { error: string | undefined; remote_address: string | undefined }) => void;

/** The one count-and-log of requests refused before routing: the parser's refusals here, the router's (params.ts). */
export function refusedRequests(deps: { metrics: Metrics; logger: Logger }): RefusedRequest {
  const logWindow = new FixedWindow(10);
  return (reason, error, fields) => {
    deps.metrics.httpMalformed(reason);
    if (logWindow.allow(performance.now())) {
      logEvent(deps.logger, 'info', { event: 'request_malformed', reason, code: error.status, ...fields }, 'HTTP request refused before routing');
    }
  };
}

/** Sockets whose request the parser refused (counted here): the API does not count the same request again. */
const refusedSockets = new WeakSet<Socket>();

/** Whether the parser refused a request of `socket` (counted and answered here). */
export function refusedByParser(socket: Socket): boolean {
  return refusedSockets.has(socket);
}

/** Returns the handler fastify calls for Node's `clientError`. */
export function clientErrorHandler(refused: RefusedRequest): (err: Error & { code?: string }, socket: Socket) => void {
  return (err, socket) => {
    // The peer reset the connection, or the socket is gone or its refusal waits for the answers before it (the parser
    // reports a failed request again for any more of it that arrives): nothing to answer, and nothing more was refused.
    if (err.code === 'ECONNRESET' || socket.destroyed || refusalWaits(socket)) return;
    const [reason, error] = refusalOf(err.code);
    refused(reason, error, { error: err.code, remote_address: loggedAddress(socket.remoteAddress) });
    refusedSockets.add(socket);
    const answer = (): void => answerOnSocket(socket, error, error.message);
    // After the answers of the requests received before it (pipelined), as Node orders every answer on a socket.
    if (!answerAfterPending(socket, answer)) answer();
  };
}
