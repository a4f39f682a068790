/**
 * Path parameters of the HTTP API: how long one may be, and what a request whose parameter is longer gets. Channel names
 * (`/channels/{name}`) and user ids (`/users/{id}/…`) are path parameters, valid up to their configured lengths, so the
 * router must accept at least that much (fastify's default, 100, answered 404 or 414 for valid names).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { Errors } from '../protocol/errors.js';
import { sendError } from './api-error.js';

/** fastify `maxParamLength` (checked on the decoded parameter): the longest channel name or user id the API accepts. */
export function maxParamLength(config: Pick<Config, 'maxChannelNameLength' | 'maxPresenceUserIdLength'>): number {
  return Math.max(config.maxChannelNameLength, config.maxPresenceUserIdLength);
}

/**
 * fastify `frameworkErrors`: errors raised by the router before any route runs (a parameter over `maxParamLength`, a
 * malformed percent-encoding). fastify's own answer is 414 / 400 with the whole path in the message; the client's fault gets
 * the API's `{ "error": reason }` instead, and nothing it sent is echoed back.
 */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const refusal = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? Errors.API_PARAM_TOO_LONG : Errors.API_INVALID_URL;
  void sendError(reply, refusal);
}
