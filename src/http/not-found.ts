/**
 * The catch-all 404 with the API's CORS headers: a browser backend calling a wrong path (a typo in the app id or route)
 * then sees 404 and the `{ "error": … }` body instead of an opaque CORS failure (status 0). Its preflights are answered
 * like the API's.
 */
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { Errors } from '../protocol/errors.js';
import { API_CORS } from './cors-options.js';
import { sendError } from './api-error.js';

/** Registered at the root, before any prefixed scope: fastify uses this context (and its CORS hook) for unmatched paths. */
export async function notFoundPlugin(scope: FastifyInstance): Promise<void> {
  // preHandler, not onRequest: `reply.callNotFound()` (the WebSocket scope's plain-GET catch-all) runs only a 404
  // context's preHandler hooks, and a router miss runs them too.
  await scope.register(cors, { ...API_CORS, hook: 'preHandler' });
  scope.setNotFoundHandler(async (_request, reply) => sendError(reply, Errors.API_NOT_FOUND));
}
