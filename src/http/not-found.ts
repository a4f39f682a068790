/**
 * The catch-all 404 with the API's CORS headers: a browser backend calling a wrong path (a typo in the app id or route)
 * then sees 404 and the `{ "error": … }` body instead of an opaque CORS failure (status 0). Its preflights are answered
 * like the API's. Every request answered here is counted in `http_server_request_duration_seconds` under the route
 * `unmatched` (as the API counts its own requests) and logged as `api_request` at most 10 times a second per node: a
 * misconfigured client shows up, and a scanner walking paths cannot turn into a log flood.
 */
import cors from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FixedWindow } from '../limits/fixed-window.js';
import { Errors } from '../protocol/errors.js';
import { logEvent } from '../telemetry/log-events.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { API_CORS } from './cors-options.js';
import { sendError } from './api-error.js';
import { loggedAddress } from './client-address.js';
import type { RefusedRequest } from './client-errors.js';
import { hasOverlongSegment, pathOf, refuseParamTooLong } from './params.js';
import { closeUnreadBody } from './unread-body.js';

/** The route label of a request no route matched (the API's own hook uses the same). */
const UNMATCHED = 'unmatched';
/** How much of a path a line carries: enough to see the typo, bounded whatever the client sends. */
const PATH_LOG_CHARS = 200;

export interface NotFoundOptions {
  metrics: Metrics;
  logger: Logger;
  /** The router's `maxParamLength` (params.ts): a path with a longer segment is refused as the router refuses one. */
  maxParamLength: number;
  /** Counts and logs what is refused before any route (client-errors.ts). */
  refused: RefusedRequest;
}

/** Registered at the root, before any prefixed scope: fastify uses this context (and its CORS hook) for unmatched paths. */
export async function notFoundPlugin(
  scope: FastifyInstance,
  { metrics, logger, maxParamLength, refused }: NotFoundOptions,
): Promise<void> {
  const logWindow = new FixedWindow(10);
  /**
   * Requests refused here as the router refuses an over-long parameter: counted and logged as `request_malformed` (as a
   * POST to the same path is, by the router), and not a second time as an unmatched `api_request`.
   */
  const refusedAsTooLong = new WeakSet<FastifyRequest>();
  // preHandler, not onRequest: `reply.callNotFound()` (the WebSocket scope's plain-GET catch-all) runs only a 404
  // context's preHandler hooks, and a router miss runs them too.
  await scope.register(cors, { ...API_CORS, hook: 'preHandler' });
  // Answered without reading the body: a parser for every content type that takes none of it, and the connection closed
  // after the 404. A request to a typo'd path declaring a body (1 MB, or one it never sends) held its socket and what it
  // sent until the whole body had arrived.
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
  scope.setNotFoundHandler(async (request, reply) => {
    closeUnreadBody(request, reply);
    // A GET whose parameter is over the router's bound comes here through the catch-all route the router fell back to:
    // `GET /apps/{id}/channels/{4 000 characters}` is refused as too long, as the same path in a POST is, not "Not found".
    if (hasOverlongSegment(request.url, maxParamLength)) {
      refusedAsTooLong.add(request);
      refuseParamTooLong(refused, request, reply);
      return reply;
    }
    return sendError(reply, Errors.API_NOT_FOUND);
  });
  // What fastify can still raise here before the handler (a malformed Content-Type, refused before any parser) is a
  // request to no route all the same: the same 404, not fastify's own error shape.
  scope.setErrorHandler(async (_error, request, reply) => {
    closeUnreadBody(request, reply);
    return sendError(reply, Errors.API_NOT_FOUND);
  });
  // A callback hook: an `async` one costs every request a promise.
  scope.addHook('onResponse', (request, reply, done) => {
    // The scope also holds @fastify/cors's `OPTIONS *` route (its preflights): only requests no route matched count here.
    if (!request.is404 || refusedAsTooLong.has(request)) {
      done();
      return;
    }
    metrics.httpRequest(request.method, UNMATCHED, reply.statusCode, reply.elapsedTime / 1000);
    if (logWindow.allow(performance.now())) {
      // The path without its query: a query may carry a signature, and redaction only knows parsed fields.
      const path = pathOf(request.url).slice(0, PATH_LOG_CHARS);
      logEvent(
        logger,
        'info',
        {
          event: 'api_request',
          request_id: request.id,
          method: request.method,
          route: UNMATCHED,
          path,
          status_code: reply.statusCode,
          duration_ms: Math.round(reply.elapsedTime * 100) / 100,
          remote_address: loggedAddress(request.ip),
        },
        'request to no route',
      );
    }
    done();
  });
}
