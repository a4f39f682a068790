/** Per-request state of the HTTP API, declared on fastify's request type (never bolted onto the object ad hoc). */
import { context, trace, type Context } from '@opentelemetry/api';
import type { FastifyRequest } from 'fastify';
import type { AppConfig } from '../config.js';
import { contextFromHeaders } from '../telemetry/tracing.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The app of `/apps/{app_id}`, set by the signing hook. */
    beaconApp: AppConfig;
    /** The raw body as received, for `body_md5`. */
    rawBody: string;
  }
}

/** Route generic for `/apps/:appId/...` routes. */
export interface AppRequest {
  Params: { appId: string };
}

/**
 * The trace context a publish continues: the HTTP server span when the http instrumentation made one, else the caller's
 * `traceparent` header directly.
 */
export function requestContext(request: FastifyRequest): Context {
  return trace.getActiveSpan() !== undefined ? context.active() : contextFromHeaders(request.headers);
}
