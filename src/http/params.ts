/**
 * Path parameters of the HTTP API: how long one may be, and what a request whose parameter is longer gets. Channel names
 * (`/channels/{name}`) and user ids (`/users/{id}/…`) are path parameters, valid up to their configured lengths, so the
 * router must accept at least that much (fastify's default, 100, answered 404 or 414 for valid names).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { SERVER_TO_USER_PREFIX } from '../protocol/channel-name.js';
import { Errors } from '../protocol/errors.js';
import { sendError } from './api-error.js';
import type { RefusedRequest } from './client-errors.js';
import { answerOnSocket } from './raw-answer.js';

/**
 * fastify `maxParamLength` (checked on the decoded parameter): the longest channel name or user id the API accepts — a
 * `#server-to-user-{id}` name is as long as its prefix and the longest user id (protocol/channel-name.ts).
 */
export function maxParamLength(config: Pick<Config, 'maxChannelNameLength' | 'maxPresenceUserIdLength'>): number {
  return Math.max(config.maxChannelNameLength, SERVER_TO_USER_PREFIX.length + config.maxPresenceUserIdLength);
}

/**
 * fastify `frameworkErrors`: errors raised by the router before any route runs (a parameter over `maxParamLength`, a
 * malformed percent-encoding). fastify's own answer is 414 / 400 with the whole path in the message; the client's fault gets
 * the API's `{ "error": reason }` instead, and nothing it sent is echoed back. No route's hooks run for these, so they are
 * counted and logged here, as the parser's refusals are (client-errors.ts). An upgrade has no HTTP response that ends
 * its socket (@fastify/websocket destroys it in a route's onResponse hook, which never runs): it is answered on the
 * socket, which is then destroyed — a reply left it open, one file descriptor per refused upgrade until the peer left.
 */
/** Node's parser marks an upgrade request (`_http_common.js`); @fastify/websocket's `request.ws` is set only by a later hook. */
interface UpgradeFlag {
  upgrade?: boolean;
}

/** Whether `request` asks for a WebSocket upgrade (from fastify's first hook on). */
export function isUpgrade(request: FastifyRequest): boolean {
  return (request.raw as UpgradeFlag).upgrade === true;
}

export function frameworkErrors(refused: RefusedRequest): (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => void {
  return (error, request, reply) => {
    const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
    const refusal = tooLong ? Errors.API_PARAM_TOO_LONG : Errors.API_INVALID_URL;
    refused(tooLong ? 'param_too_long' : 'bad_url', refusal, { error: error.code, remote_address: request.ip });
    if (isUpgrade(request)) {
      answerOnSocket(request.raw.socket, refusal, refusal.message);
      return;
    }
    void sendError(reply, refusal);
  };
}
