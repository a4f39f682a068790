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
import { loggedAddress } from './client-address.js';

/**
 * How much longer than the longest valid parameter one may be before the router refuses it (API_PARAM_TOO_LONG): the
 * shortest too-long channel name still reaches its route and is refused for what it is (API_INVALID_CHANNEL_NAME, naming
 * it) — the default router bound was the longest valid name itself, and a GET one character over it got 404. Any longer
 * is refused before a route does any work with it.
 */
const PARAM_LENGTH_MARGIN = 1;

/**
 * fastify `maxParamLength`: one more than the longest channel name or user id the API accepts — a
 * `#server-to-user-{id}` name is as long as its prefix and the longest user id (protocol/channel-name.ts). The router
 * checks it on the percent-decoded parameter in UTF-16 units, and a user id's bound counts characters, each up to two
 * units (an emoji): so the id's part is twice its bound. A valid name is not refused for being written
 * `%23server-to-user-…` or with every character of its id encoded (up to 12 characters of path each). A channel name
 * that passes the router but is too long is refused by its route (API_INVALID_CHANNEL_NAME); a user id too long for any
 * sign-in reaches `terminate_connections`, which closes nothing for it (200, as for any user with no connection).
 */
export function maxParamLength(config: Pick<Config, 'maxChannelNameLength' | 'maxPresenceUserIdLength'>): number {
  const longest = Math.max(config.maxChannelNameLength, SERVER_TO_USER_PREFIX.length + 2 * config.maxPresenceUserIdLength);
  return longest + PARAM_LENGTH_MARGIN;
}

/** A request URL's path, without its query (which carries an API call's signature). */
export function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/**
 * Whether a segment of `url`'s path is longer than `max` once percent-decoded, as the router measures a parameter. A GET
 * the router passes over for an over-long parameter is matched by the catch-all WebSocket route (transport/ws-route.ts)
 * rather than refused, and reaches the 404 handler (not-found.ts), which asks this to answer it as the router would.
 */
export function hasOverlongSegment(url: string, max: number): boolean {
  const path = pathOf(url);
  // Decoding never lengthens a segment: only one longer than `max` as written is decoded.
  return path.split('/').some((segment) => segment.length > max && decodedLength(segment) > max);
}

/** The length of `segment` percent-decoded; as written when it does not decode (the router refuses those as bad URLs). */
function decodedLength(segment: string): number {
  try {
    return decodeURIComponent(segment).length;
  } catch {
    return segment.length;
  }
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

/**
 * `addressOf`: the client's address of a raw request under TRUST_PROXY (http/client-address.ts): the request fastify
 * hands these errors is built without `trustProxy`, so its `ip` is the peer's — a proxy's, behind one.
 */
export function frameworkErrors(
  refused: RefusedRequest,
  addressOf: (raw: FastifyRequest['raw']) => string | undefined,
): (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => void {
  return (error, request, reply) => {
    const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
    answerRefused(refused, tooLong ? 'param_too_long' : 'bad_url', error.code, request, reply, addressOf(request.raw));
  };
}

/** A request with a path segment over `maxParamLength` that no route matched: refused as the router refuses one. */
export function refuseParamTooLong(refused: RefusedRequest, request: FastifyRequest, reply: FastifyReply): void {
  answerRefused(refused, 'param_too_long', 'FST_ERR_MAX_PARAM_LENGTH', request, reply, request.ip);
}

/** Counts, logs and answers a path refused before any route: on the socket for an upgrade (see above), else as the API. */
function answerRefused(
  refused: RefusedRequest,
  reason: 'param_too_long' | 'bad_url',
  code: string,
  request: FastifyRequest,
  reply: FastifyReply,
  address: string | undefined,
): void {
  const refusal = reason === 'param_too_long' ? Errors.API_PARAM_TOO_LONG : Errors.API_INVALID_URL;
  refused(reason, refusal, { error: code, remote_address: loggedAddress(address) });
  if (isUpgrade(request)) {
    answerOnSocket(request.raw.socket, refusal, refusal.message);
    return;
  }
  void sendError(reply, refusal);
}
