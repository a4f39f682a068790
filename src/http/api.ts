/**
 * The Pusher HTTP API under `/apps/{app_id}`, as one encapsulated plugin: CORS, the signing hook, raw-body JSON parsing,
 * one registration per route file, and one error handler that answers `{ "error": reason }` with the documented status.
 * Every error answer of the scope, a hook's or the error handler's, goes through `answerError`, which counts it in
 * `websocket_api_refusals_total` under its reason (api-refusals.ts): counted in one place, never at a throw site.
 *
 * Order of work, cheapest refusal first: the drain gate (503), then a query naming a parameter twice (400: its signature
 * would cover one of the values), then key, timestamp and signature over the query — before a byte of the body is read —
 * then app state and rate limit, then the body's MD5 over its raw bytes against the signed `body_md5`, and only then
 * `JSON.parse`. An unsigned 1 MB body costs no parsing (and no hashing).
 */
import cors from '@fastify/cors';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { EngineUnavailableError } from '../adapters/adapter.js';
import type { ApiDeps } from './api-deps.js';
import { API_CORS } from './cors-options.js';
import { ApiError, errorAnswer, sendFilled } from './api-error.js';
import { refusedByParser } from './client-errors.js';
import { API_REFUSALS } from './api-refusals.js';
import { clipped } from '../protocol/clip.js';
import { Errors, type HttpError } from '../protocol/errors.js';
import { FixedWindow } from '../limits/fixed-window.js';
import { endHttpServerSpan, logIds, startHttpServerSpan } from '../telemetry/tracing.js';
import { logEvent } from '../telemetry/log-events.js';
import { signedQuery, verifyBody, verifyRequest, type SigningFailure } from './signing.js';
import { closeUnreadBody } from './unread-body.js';
import { loggedAddress } from './client-address.js';
import { isUpgrade, pathOf } from './params.js';
import { registerChannelRoutes } from './routes/channels.js';
import { registerEventRoutes } from './routes/events.js';
import { registerUserRoutes } from './routes/users.js';
import type { AppRequest } from './request-app.js';

/** Seconds a client is told to wait (`Retry-After`) when the API answers 503 (draining, cluster engine down). */
const RETRY_AFTER_SECONDS = '1';

/** Log lines a second, node-wide, of each kind of refused API request (auth_failed, rate_limited); the metrics count every one. */
const LOGGED_REFUSALS_PER_SECOND = 10;

export async function apiPlugin(scope: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { apps, metrics, logger, config } = deps;
  await scope.register(cors, API_CORS);
  // @fastify/cors declares its preflight route as `OPTIONS *`, which under our `/apps/:appId` prefix becomes
  // `/apps/:appId*` and matches no API path, so preflights got 404 before the cors hook could answer them. This route
  // makes `/apps/{id}/…` preflights reach the scope, where the cors onRequest hook replies 204 and the handler never runs.
  scope.options('/*', async (_request, reply) => reply.callNotFound());

  // Signed requests only: an unsigned flood is refused by the signature check before it can use an app's budget.
  const windows = new Map<string, FixedWindow>();
  const rateWindow = (appId: string): FixedWindow => {
    let w = windows.get(appId);
    if (w === undefined) {
      w = new FixedWindow(config.apiRequestsPerSecond);
      windows.set(appId, w);
    }
    return w;
  };
  // Refused requests are all counted, but a flood of them (unsigned, over the rate) logs at most this many lines a second.
  const authFailedLog = new FixedWindow(LOGGED_REFUSALS_PER_SECOND);
  const rateLimitedLog = new FixedWindow(LOGGED_REFUSALS_PER_SECOND);
  // The access line of a request answered ≥ 400 too: an unsigned flood, or a client retrying a bad body in a loop, would
  // otherwise write one line per request; and of a preflight (OPTIONS), which is answered 204 but never signed: anyone
  // could write a line per request with it. A signed, accepted request always has its line.
  const refusedRequestLog = new FixedWindow(LOGGED_REFUSALS_PER_SECOND);
  scope.decorateRequest('beaconApp', null as never);
  scope.decorateRequest('signedBodyMd5', undefined);
  scope.decorateRequest('apiSpan', undefined);

  /**
   * Every error the API answers goes through here, decided by a hook or thrown to the error handler: counted in
   * `websocket_api_refusals_total` under its reason when it has one (api-refusals.ts; a refused signature and the rate
   * limit are counted where they are decided). `message` is the error's, already filled in.
   */
  const answerError = (reply: FastifyReply, error: HttpError, message: string = error.message): FastifyReply => {
    const reason = API_REFUSALS.get(error);
    if (reason !== undefined) metrics.apiRefused(reason);
    return sendFilled(reply, error, message);
  };

  /** Counts and logs a refused signature check (every refusal goes through here). */
  const authFailed = (request: FastifyRequest<AppRequest>, failure: SigningFailure): void => {
    metrics.apiAuthFailure(failure.reason);
    if (!authFailedLog.allow(performance.now())) return;
    logEvent(
      logger,
      'info',
      {
        event: 'auth_failed',
        reason: failure.reason,
        request_id: request.id,
        app_id: clipped(request.params.appId ?? '', 64),
        // Who sends bad signatures: what an operator looks for in a flood of them (a probe found no address on the line).
        remote_address: loggedAddress(request.ip),
        ...logIds(request.apiSpan),
      },
      failure.message,
    );
  };

  // An upgrade to an API route is no API call: refused with 4005 as on any path (transport/ws-route.ts), with no span (its
  // onResponse, which would end it, never runs), no signature check and no api_request line.
  scope.addHook('onRequest', async (request, reply) => {
    if (isUpgrade(request)) return;
    request.apiSpan = startHttpServerSpan(request.method, request.routeOptions.url ?? 'unmatched', request.headers, {
      scheme: request.protocol,
      path: pathOf(request.url),
    });
    // A request its caller abandons before the answer (the connection closed mid-body, or while the handler waited) gets
    // no onResponse: its span ends here, without a status code. It was never ended, never exported, its children under
    // a parent that never came. An answer written whole is onResponse's to end.
    reply.raw.once('close', () => {
      if (reply.raw.writableFinished) return;
      const span = request.apiSpan;
      request.apiSpan = undefined;
      span?.end();
    });
  });
  // The drain's third step (lifecycle/drain.ts): from then on nothing is accepted, so nothing accepted can be lost. The
  // socket is closed after the answer: a backend's pooled keep-alive connection would bring its retry back here for as
  // long as the drain lasts (its leave grace included), where a new one goes through the balancer to a node that serves.
  scope.addHook('onRequest', async (request, reply) => {
    if (!deps.isAccepting() && !isUpgrade(request)) {
      return answerError(reply.header('Retry-After', RETRY_AFTER_SECONDS).header('Connection', 'close'), Errors.API_SHUTTING_DOWN);
    }
    return undefined;
  });

  // Runs before the body is read: a refused request never costs a parse (nor an MD5) of what it sent.
  scope.addHook<AppRequest>('onRequest', async (request, reply) => {
    if (request.method === 'OPTIONS' || isUpgrade(request)) return;
    const query = signedQuery(request.query);
    if (query === undefined) {
      closeUnreadBody(request, reply);
      return answerError(reply, Errors.API_INVALID_REQUEST);
    }
    // The routes read what the signature covers: the same parse, the names as signed.
    request.query = query;
    const app = apps.byId(request.params.appId ?? '');
    const path = pathOf(request.url);
    const result =
      app === undefined
        ? ({ ok: false, reason: 'unknown_key', error: Errors.API_UNKNOWN_APP, message: Errors.API_UNKNOWN_APP.message } as const)
        : verifyRequest(app, { method: request.method, path, query }, config.apiTimestampToleranceSeconds);
    if (!result.ok) {
      authFailed(request, result);
      closeUnreadBody(request, reply);
      // Already filled in (the log line has it too).
      return answerError(reply, result.error, result.message);
    }
    if (app === undefined) return answerError(reply, Errors.API_UNKNOWN_APP);
    request.signedBodyMd5 = result.bodyMd5;
    if (!app.enabled) return answerError(reply, Errors.API_APP_DISABLED);
    // A compressed body (gzip from a proxy or a client library's option) would fail as invalid JSON or a body MD5 that
    // does not match, neither of which says why; refused unread instead, before the rate limit counts it. A request
    // without a body has nothing to decode (the review: a GET with the header was refused).
    if (declaresBody(request) && !identityEncoded(request.headers['content-encoding'])) {
      closeUnreadBody(request, reply);
      return answerError(reply, Errors.API_UNSUPPORTED_ENCODING);
    }
    if (!rateWindow(app.id).allow(performance.now())) {
      metrics.rateLimited(app.id, 'http_api');
      if (rateLimitedLog.allow(performance.now())) {
        logEvent(
          logger,
          'info',
          { event: 'rate_limited', scope: 'http_api', app_id: app.id, request_id: request.id, ...logIds(request.apiSpan) },
          'API rate limit',
        );
      }
      return answerError(reply.header('Retry-After', RETRY_AFTER_SECONDS), Errors.API_RATE_LIMITED, Errors.API_RATE_LIMITED.format(config.apiRequestsPerSecond));
    }
    // Every route answers for the cluster (or acts on it): while the engine is down a query could not answer and a
    // terminate would do nothing, with a 200. The backend gets 503 and retries instead (a query the engine fails while
    // up rejects, and is answered the same 503 by the error handler: api-error.ts).
    if (!deps.adapter.status().up) {
      closeUnreadBody(request, reply);
      return answerError(reply.header('Retry-After', RETRY_AFTER_SECONDS), Errors.API_ENGINE_UNAVAILABLE);
    }
    request.beaconApp = app;
    return undefined;
  });

  // The body as raw bytes: its MD5 is checked against the signed digest (over exactly the bytes received), then parsed.
  scope.addContentTypeParser(
    ['application/json', 'text/plain'],
    { parseAs: 'buffer', bodyLimit: config.apiBodyLimitBytes },
    (request, body, done) => {
      const raw = typeof body === 'string' ? Buffer.from(body) : body;
      const checked = verifyBody(raw, request.signedBodyMd5);
      if (!checked.ok) {
        authFailed(request as FastifyRequest<AppRequest>, checked);
        return done(ApiError.of(checked.error), undefined);
      }
      if (raw.length === 0) return done(null, {});
      try {
        done(null, JSON.parse(raw.toString('utf8')));
      } catch {
        done(ApiError.of(Errors.API_INVALID_JSON), undefined);
      }
    },
  );

  scope.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    const span = request.apiSpan;
    const ids = logIds(span); // before the span ends: an ended span no longer records
    request.apiSpan = undefined;
    if (span !== undefined) endHttpServerSpan(span, reply.statusCode);
    const unsigned = reply.statusCode >= 400 || request.method === 'OPTIONS';
    if (unsigned && !refusedRequestLog.allow(performance.now())) return;
    logEvent(
      logger,
      'info',
      {
        event: 'api_request',
        ...ids,
        request_id: request.id,
        app_id: request.beaconApp?.id,
        method: request.method,
        route,
        status_code: reply.statusCode,
        duration_ms: Math.round(reply.elapsedTime * 100) / 100,
        // A refused call's or a preflight's client; an accepted one is the app's backend, whose address the line needs
        // not carry.
        ...(unsigned ? { remote_address: loggedAddress(request.ip) } : {}),
      },
      'API request',
    );
  });

  scope.setErrorHandler((error: FastifyError | ApiError | EngineUnavailableError, request, reply) => {
    const answer = errorAnswer(error);
    // A 503 is a documented answer (draining, cluster engine down or failing a query) with its own reason; API_INTERNAL is
    // ours and says nothing.
    if (answer.status === 503) void reply.header('Retry-After', RETRY_AFTER_SECONDS);
    if (answer.internal) {
      const line = { event: 'api_request', err: error, request_id: request.id, ...logIds(request.apiSpan) } as const;
      logEvent(logger, 'error', line, 'API handler failed');
    }
    // A body the parser refused (a FIN mid-body, a malformed chunk, the request timeout), counted and answered as that
    // (client-errors.ts), fails its read here too: an answer nobody gets, not a second refusal. (A reset mid-body, which
    // the parser does not refuse, is counted here.)
    if (!answer.internal && !(error instanceof ApiError) && refusedByParser(request.raw.socket)) {
      return sendFilled(reply, answer.error, answer.message);
    }
    return answerError(reply, answer.error, answer.message);
  });

  registerEventRoutes(scope, deps);
  registerChannelRoutes(scope, deps);
  registerUserRoutes(scope, deps);
}

/**
 * True when a body's `Content-Encoding` (RFC 9110 §8.4) leaves it as sent: no header, or only `identity` codings. The API
 * decodes nothing, so any other coding (`gzip`, `br`, `deflate`, an unknown one) is refused 415, as the RFC asks.
 */
function identityEncoded(header: string | undefined): boolean {
  if (header === undefined) return true;
  return header.split(',').every((coding) => {
    const name = coding.trim().toLowerCase();
    return name === '' || name === 'identity';
  });
}

/** Whether the request says a body follows: a `Content-Length` above 0, or a `Transfer-Encoding`. */
function declaresBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
