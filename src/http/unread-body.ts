/**
 * A request answered before its body is read (refused by the API's signature check, sent to no route): its connection
 * is closed after the answer, so the server neither receives the rest of the body nor waits for one that never comes.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Marks the answer `Connection: close` when the request declares a body. */
export function closeUnreadBody(request: FastifyRequest, reply: FastifyReply): void {
  if (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined) {
    void reply.header('connection', 'close');
  }
}
