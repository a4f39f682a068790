/** Per-request state of the HTTP API, declared on fastify's request type (never bolted onto the object ad hoc). */
import type { Context, Span } from '@opentelemetry/api';
import type { FastifyRequest } from 'fastify';
import type { AppConfig } from '../config.js';
import { contextOf } from '../telemetry/tracing.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The app of `/apps/{app_id}`, set by the signing hook. */
    beaconApp: AppConfig;
    /** The `body_md5` the request's verified signature covers, checked against the raw body before it is parsed. */
    signedBodyMd5: string | undefined;
    /** The request's server span (tracing.ts `startHttpServerSpan`), set by the first hook. */
    apiSpan: Span | undefined;
  }
}

/** Route generic for `/apps/:appId/...` routes. */
export interface AppRequest {
  Params: { appId: string };
}

/** The trace context a publish continues: the request's server span (itself a child of the caller's `traceparent`). */
export function requestContext(request: FastifyRequest): Context | undefined {
  return request.apiSpan === undefined ? undefined : contextOf(request.apiSpan);
}
