/**
 * The Pusher HTTP API under `/apps/{app_id}`, as one encapsulated plugin: raw-body JSON parsing, CORS, the signing hook,
 * one registration per route file, and one error handler that answers `{ "error": reason }` with the documented status.
 */
import cors from '@fastify/cors';
import type { FastifyError, FastifyInstance } from 'fastify';
import { ApiError, type ApiDeps } from './api-deps.js';
import { API_CORS } from './cors-options.js';
import { FixedWindow } from '../limits/fixed-window.js';
import { endHttpServerSpan, logIds, startHttpServerSpan } from '../telemetry/tracing.js';
import { verifyRequest } from './signing.js';
import { registerChannelRoutes } from './routes/channels.js';
import { registerEventRoutes } from './routes/events.js';
import { registerUserRoutes } from './routes/users.js';
import type { AppRequest } from './request-app.js';

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
  scope.decorateRequest('beaconApp', null as never);
  scope.decorateRequest('rawBody', '');
  scope.decorateRequest('apiSpan', undefined);
  scope.addHook('onRequest', async (request) => {
    request.apiSpan = startHttpServerSpan(request.method, request.routeOptions.url ?? 'unmatched', request.headers);
  });
  scope.addContentTypeParser(
    ['application/json', 'text/plain'],
    { parseAs: 'string', bodyLimit: config.maxPayloadBytes * config.maxBatchSize + 64 * 1024 },
    (request, body, done) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      request.rawBody = text;
      if (text.length === 0) return done(null, {});
      try {
        done(null, JSON.parse(text));
      } catch {
        done(new ApiError(400, 'Body is not valid JSON'), undefined);
      }
    },
  );

  scope.addHook<AppRequest>('preHandler', async (request, reply) => {
    if (request.method === 'OPTIONS') return;
    const app = apps.byId(request.params.appId);
    const [path, rawQuery = ''] = request.url.split('?', 2) as [string, string | undefined];
    const result =
      app === undefined
        ? ({ ok: false, reason: 'unknown_key', message: 'Unknown app id' } as const)
        : verifyRequest(app, { method: request.method, path, rawQuery, body: request.rawBody }, config.apiTimestampToleranceSeconds);
    if (!result.ok) {
      metrics.apiAuthFailure(result.reason);
      logger.info(
        {
          event: 'auth_failed',
          reason: result.reason,
          request_id: request.id,
          app_id: request.params.appId.slice(0, 64),
          ...logIds(request.apiSpan),
        },
        result.message,
      );
      return reply.code(401).send({ error: result.message });
    }
    if (app === undefined) return reply.code(401).send({ error: 'Unknown app id' });
    if (!app.enabled) return reply.code(403).send({ error: 'App is disabled' });
    if (!rateWindow(app.id).allow(Date.now())) {
      metrics.rateLimited(app.id, 'http_api');
      logger.warn({ event: 'rate_limited', scope: 'http_api', app_id: app.id, request_id: request.id }, 'API rate limit');
      return reply.code(429).send({ error: `Over ${config.apiRequestsPerSecond} API requests per second` });
    }
    request.beaconApp = app;
    return undefined;
  });

  scope.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    const span = request.apiSpan;
    const ids = logIds(span); // before the span ends: an ended span no longer records
    if (span !== undefined) endHttpServerSpan(span, reply.statusCode);
    logger.info(
      {
        event: 'api_request',
        ...ids,
        request_id: request.id,
        app_id: request.beaconApp?.id,
        method: request.method,
        route,
        status_code: reply.statusCode,
        duration_ms: Math.round(reply.elapsedTime * 100) / 100,
      },
      'API request',
    );
  });

  scope.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status >= 500) logger.error({ event: 'api_request', err: error, request_id: request.id }, 'API handler failed');
    const message = status === 413 && !(error instanceof ApiError) ? 'Request body too large' : error.message;
    return reply.code(status).send({ error: status >= 500 ? 'Internal error' : message });
  });

  registerEventRoutes(scope, deps);
  registerChannelRoutes(scope, deps);
  registerUserRoutes(scope, deps);
}
