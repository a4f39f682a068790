/**
 * The CORS policy of everything a browser backend may call: the HTTP API and the catch-all 404 (without CORS headers a
 * browser reports an unknown path as status 0 instead of 404). Laravel Echo sends X-Socket-Id to the app's own backend;
 * browser backends calling Beacon directly need it allowed too.
 *
 * Any `OPTIONS` is answered as a preflight (204 with the allowed methods and headers): one without `Origin` or
 * `Access-Control-Request-Method` is not a browser's preflight but a plain HTTP `OPTIONS` (a probe, `curl -X OPTIONS`),
 * which asks what the resource allows and is not an error. @fastify/cors's default (`strictPreflight`) refused it with
 * its own `text/plain` 400, outside the error registry.
 */
import type { FastifyCorsOptions } from '@fastify/cors';

/** @fastify/cors options shared by the API scope and the not-found scope. */
export const API_CORS: FastifyCorsOptions = {
  origin: true,
  methods: ['GET', 'POST', 'OPTIONS'],
  allowedHeaders: ['Content-Type', 'Authorization', 'X-Socket-Id', 'traceparent', 'tracestate'],
  maxAge: 600,
  strictPreflight: false,
};
