/**
 * The CORS policy of everything a browser backend may call: the HTTP API and the catch-all 404 (without CORS headers a
 * browser reports an unknown path as status 0 instead of 404). Laravel Echo sends X-Socket-Id to the app's own backend;
 * browser backends calling Beacon directly need it allowed too.
 */
import type { FastifyCorsOptions } from '@fastify/cors';

/** @fastify/cors options shared by the API scope and the not-found scope. */
export const API_CORS: FastifyCorsOptions = {
  origin: true,
  methods: ['GET', 'POST', 'OPTIONS'],
  allowedHeaders: ['Content-Type', 'Authorization', 'X-Socket-Id', 'traceparent', 'tracestate'],
  maxAge: 600,
};
