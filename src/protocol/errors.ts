/**
 * Every error Beacon can answer, named once — the way fastify's `lib/errors.js` names its errors: one factory, one named
 * constant per error, each with its wire answer and message. A name is never reused for another meaning, and
 * docs/errors.md lists exactly this registry (test/protocol/errors.test.ts checks both directions). Pure: no I/O.
 *
 * Four ways to answer, one per `kind`:
 * - `http`: an HTTP status and `{ "error": message }` (the Pusher HTTP API, upgrades refused while draining);
 * - `frame`: `pusher:error` `{ message, code }` — the connection stays open;
 * - `subscription`: `pusher:subscription_error` `{ type, error: message, status }` on the refused channel;
 * - `close`: `pusher:error` with the close code, then the close frame with the same code (Connection.close).
 * Messages may hold `%s` placeholders, filled in order by `format(...args)`; without placeholders `message` is the text.
 */
import { CloseCode, ErrorCode } from './close-codes.js';

/** `type` of a `pusher:subscription_error` (the names Soketi and Sockudo answer with). */
export type SubscriptionErrorType = 'AuthError' | 'InvalidChannel' | 'InvalidChannelData' | 'InvalidMessage' | 'LimitReached' | 'ServiceUnavailable';

/** What each kind of error carries on the wire besides its message. */
export interface ErrorWire {
  http: { status: number };
  frame: { code: number | null };
  subscription: { status: number; type: SubscriptionErrorType };
  close: { code: number };
}

/** How an error is answered. */
export type ErrorKind = keyof ErrorWire;

/** One named error of the registry. */
export type BeaconError<K extends ErrorKind = ErrorKind> = ErrorWire[K] & {
  readonly name: string;
  readonly kind: K;
  /** The message; `%s` placeholders are filled by `format`. */
  readonly message: string;
  /** The message with each `%s` replaced by the next argument. */
  format(...args: ReadonlyArray<string | number>): string;
};

/** An error of the HTTP API. */
export type HttpError = BeaconError<'http'>;
/** A `pusher:error` that keeps the connection. */
export type FrameError = BeaconError<'frame'>;
/** A `pusher:subscription_error`. */
export type SubscriptionError = BeaconError<'subscription'>;
/** A `pusher:error` followed by a close frame with the same code. */
export type CloseError = BeaconError<'close'>;

/** The one factory: every registry entry is created here, so every entry has the same shape. */
function createError<K extends ErrorKind>(name: string, kind: K, wire: ErrorWire[K], message: string): BeaconError<K> {
  const format = (...args: ReadonlyArray<string | number>): string => {
    let i = 0;
    return message.replace(/%s/g, () => String(args[i++] ?? ''));
  };
  const error: BeaconError<K> = { ...wire, name, kind, message, format };
  Object.freeze(error);
  return error;
}

const http = (name: string, status: number, message: string): HttpError => createError(name, 'http', { status }, message);
const frame = (name: string, code: number | null, message: string): FrameError => createError(name, 'frame', { code }, message);
const sub = (name: string, status: number, type: SubscriptionErrorType, message: string): SubscriptionError =>
  createError(name, 'subscription', { status, type }, message);
const close = (name: string, code: number, message: string): CloseError => createError(name, 'close', { code }, message);

/** The registry: every error the server can answer, keyed by its name. */
export const Errors = {
  // HTTP API: refused before the body is read (signing, app state, rate limit, drain).
  API_SHUTTING_DOWN: http('API_SHUTTING_DOWN', 503, 'Server is shutting down; retry'),
  API_ENGINE_UNAVAILABLE: http('API_ENGINE_UNAVAILABLE', 503, 'Cluster engine unavailable; retry'),
  API_UNKNOWN_APP: http('API_UNKNOWN_APP', 401, 'Unknown app id'),
  API_UNKNOWN_KEY: http('API_UNKNOWN_KEY', 401, 'Unknown auth_key'),
  API_EXPIRED: http('API_EXPIRED', 401, 'auth_timestamp is not a Unix time within %s s of server time'),
  API_BAD_SIGNATURE: http('API_BAD_SIGNATURE', 401, 'Invalid auth_signature'),
  API_BODY_MD5: http('API_BODY_MD5', 401, 'body_md5 does not match the body'),
  API_APP_DISABLED: http('API_APP_DISABLED', 403, 'App is disabled'),
  API_RATE_LIMITED: http('API_RATE_LIMITED', 429, 'Over %s API requests per second'),
  // HTTP API: the body and the query.
  API_BODY_TOO_LARGE: http('API_BODY_TOO_LARGE', 413, 'Request body too large'),
  API_UNSUPPORTED_MEDIA_TYPE: http('API_UNSUPPORTED_MEDIA_TYPE', 415, 'Unsupported content type: send application/json'),
  API_UNSUPPORTED_ENCODING: http('API_UNSUPPORTED_ENCODING', 415, 'Unsupported Content-Encoding: send the body uncompressed'),
  API_INVALID_REQUEST: http('API_INVALID_REQUEST', 400, 'Invalid request'),
  API_HEADERS_TOO_LARGE: http('API_HEADERS_TOO_LARGE', 431, 'Request headers too large'),
  API_REQUEST_TIMEOUT: http('API_REQUEST_TIMEOUT', 408, 'Request not received in time'),
  API_INVALID_JSON: http('API_INVALID_JSON', 400, 'Body is not valid JSON'),
  API_BODY_NOT_OBJECT: http('API_BODY_NOT_OBJECT', 400, 'Body must be a JSON object'),
  API_EVENT_NAME_INVALID: http('API_EVENT_NAME_INVALID', 400, '"name" must be a non-empty string'),
  API_EVENT_NAME_TOO_LONG: http('API_EVENT_NAME_TOO_LONG', 400, '"name" longer than %s characters'),
  API_EVENT_NAME_RESERVED: http('API_EVENT_NAME_RESERVED', 400, '"name" begins with pusher: or pusher_internal:, reserved for the protocol'),
  API_DATA_NOT_STRING: http('API_DATA_NOT_STRING', 400, '"data" must be a string (JSON-encode objects)'),
  API_DATA_TOO_LARGE: http('API_DATA_TOO_LARGE', 413, '"data" over %s bytes'),
  API_CHANNEL_NOT_STRING: http('API_CHANNEL_NOT_STRING', 400, '"channel" must be a string'),
  API_CHANNEL_OR_CHANNELS: http('API_CHANNEL_OR_CHANNELS', 400, 'Give exactly one of "channel" or "channels"'),
  API_CHANNELS_EMPTY: http('API_CHANNELS_EMPTY', 400, '"channels" is empty'),
  API_TOO_MANY_CHANNELS: http('API_TOO_MANY_CHANNELS', 400, 'More than %s channels'),
  API_INVALID_CHANNEL_NAME: http('API_INVALID_CHANNEL_NAME', 400, 'Invalid channel name: %s'),
  API_ENCRYPTED_NOT_ALONE: http('API_ENCRYPTED_NOT_ALONE', 400, 'An encrypted channel must be the only channel of a publish'),
  API_INVALID_SOCKET_ID: http('API_INVALID_SOCKET_ID', 400, '"socket_id" must look like 123.456'),
  API_UNKNOWN_INFO: http('API_UNKNOWN_INFO', 400, 'Unknown info attribute: %s'),
  API_BATCH_NOT_ARRAY: http('API_BATCH_NOT_ARRAY', 400, '"batch" must be an array'),
  API_BATCH_TOO_LARGE: http('API_BATCH_TOO_LARGE', 400, 'Batch of %s events is over the limit of %s'),
  API_USER_COUNT_NEEDS_PREFIX: http('API_USER_COUNT_NEEDS_PREFIX', 400, 'info=user_count needs filter_by_prefix=presence-'),
  API_USER_COUNT_NOT_PRESENCE: http('API_USER_COUNT_NOT_PRESENCE', 400, 'user_count is only available for presence channels'),
  API_CACHE_NOT_CACHE_CHANNEL: http('API_CACHE_NOT_CACHE_CHANNEL', 400, 'cache is only available for cache channels'),
  API_USERS_NOT_PRESENCE: http('API_USERS_NOT_PRESENCE', 400, 'Users are only available for presence channels'),
  // HTTP: routing, and what the server owns.
  API_PARAM_TOO_LONG: http('API_PARAM_TOO_LONG', 400, 'Path parameter too long'),
  API_INVALID_URL: http('API_INVALID_URL', 400, 'Invalid URL'),
  API_HOST_REQUIRED: http('API_HOST_REQUIRED', 400, 'An HTTP/1.1 request needs a Host header'),
  API_METHOD_NOT_ALLOWED: http('API_METHOD_NOT_ALLOWED', 405, 'Method not allowed'),
  API_EXPECTATION_FAILED: http('API_EXPECTATION_FAILED', 417, 'Unsupported Expect header (only 100-continue is supported)'),
  API_TOO_MANY_PIPELINED: http('API_TOO_MANY_PIPELINED', 429, 'More than %s requests sent ahead of their answers'),
  API_NOT_FOUND: http('API_NOT_FOUND', 404, 'Not found'),
  API_INTERNAL: http('API_INTERNAL', 500, 'Internal error'),
  UPGRADE_SHUTTING_DOWN: http('UPGRADE_SHUTTING_DOWN', 503, 'Server is shutting down'),
  UPGRADE_BAD_HANDSHAKE: http('UPGRADE_BAD_HANDSHAKE', 400, 'Invalid WebSocket handshake: %s'),

  // `pusher:error`, the connection stays: frames refused before or while decoding.
  FRAME_RATE_LIMITED: frame('FRAME_RATE_LIMITED', ErrorCode.ClientEventRateLimited, 'Frame rate limit (%s/s) exceeded; frame dropped'),
  FRAME_BINARY: frame('FRAME_BINARY', null, 'Binary frames are not supported; send UTF-8 JSON text'),
  FRAME_TOO_LARGE: frame('FRAME_TOO_LARGE', null, 'Frame over %s bytes'),
  FRAME_TOO_DEEP: frame('FRAME_TOO_DEEP', null, 'Frame nested deeper than %s levels'),
  FRAME_INVALID_JSON: frame('FRAME_INVALID_JSON', null, 'Invalid JSON'),
  FRAME_NOT_OBJECT: frame('FRAME_NOT_OBJECT', null, 'A frame must be a JSON object'),
  FRAME_MISSING_EVENT: frame('FRAME_MISSING_EVENT', null, 'Missing "event"'),
  FRAME_UNKNOWN_EVENT: frame('FRAME_UNKNOWN_EVENT', null, 'Unknown event: %s'),
  FRAME_INVALID_MESSAGE: frame('FRAME_INVALID_MESSAGE', null, 'Invalid %s message'),
  // `pusher:error`: sign-in.
  SIGNIN_BAD_SIGNATURE: frame('SIGNIN_BAD_SIGNATURE', ErrorCode.Unauthorized, 'Invalid signin signature'),
  SIGNIN_USER_DATA_NOT_JSON: frame('SIGNIN_USER_DATA_NOT_JSON', null, 'user_data is not JSON'),
  SIGNIN_USER_ID_INVALID: frame('SIGNIN_USER_ID_INVALID', null, 'user_data needs an id: an integer, or a well-formed string of 1 to %s characters'),
  SIGNIN_WATCHLIST_TOO_LONG: frame('SIGNIN_WATCHLIST_TOO_LONG', ErrorCode.WatchlistLimit, 'Watchlist over %s ids'),
  SIGNIN_WATCHLIST_INVALID: frame('SIGNIN_WATCHLIST_INVALID', null, 'watchlist must be a list of user ids, as id is'),
  SIGNIN_OTHER_USER: frame('SIGNIN_OTHER_USER', ErrorCode.Unauthorized, 'Already signed in as another user'),
  // `pusher:error` with the channel: refused client events (4301, 4310–4314).
  CLIENT_EVENT_RATE_LIMITED: frame('CLIENT_EVENT_RATE_LIMITED', ErrorCode.ClientEventRateLimited, 'Client event rate limit (%s/s) exceeded'),
  CLIENT_EVENTS_DISABLED: frame('CLIENT_EVENTS_DISABLED', ErrorCode.ClientEventsDisabled, 'Client events are not enabled for this app'),
  CLIENT_EVENT_CHANNEL_NOT_ALLOWED: frame(
    'CLIENT_EVENT_CHANNEL_NOT_ALLOWED',
    ErrorCode.ClientEventChannelNotAllowed,
    'Client events are only allowed on private and presence channels',
  ),
  CLIENT_EVENT_NOT_SUBSCRIBED: frame('CLIENT_EVENT_NOT_SUBSCRIBED', ErrorCode.ClientEventNotSubscribed, 'Not subscribed to %s'),
  CLIENT_EVENT_NAME_TOO_LONG: frame('CLIENT_EVENT_NAME_TOO_LONG', ErrorCode.ClientEventNameTooLong, 'Event name longer than %s'),
  CLIENT_EVENT_TOO_LARGE: frame('CLIENT_EVENT_TOO_LARGE', ErrorCode.ClientEventTooLarge, 'Event data over %s bytes'),

  // `pusher:subscription_error` on the channel.
  SUBSCRIBE_INVALID_CHANNEL: sub('SUBSCRIBE_INVALID_CHANNEL', 400, 'InvalidChannel', 'Invalid channel name (at most %s of [A-Za-z0-9_-=@,.;])'),
  SUBSCRIBE_INVALID_USER_CHANNEL: sub('SUBSCRIBE_INVALID_USER_CHANNEL', 400, 'InvalidChannel', 'Invalid user channel: #server-to-user- and a user id of 1 to %s characters'),
  SUBSCRIBE_AUTH_NOT_STRING: sub('SUBSCRIBE_AUTH_NOT_STRING', 400, 'InvalidMessage', '"auth" must be a string'),
  SUBSCRIBE_CHANNEL_DATA_NOT_STRING: sub(
    'SUBSCRIBE_CHANNEL_DATA_NOT_STRING',
    400,
    'InvalidMessage',
    '"channel_data" must be a JSON-encoded string',
  ),
  SUBSCRIBE_TOO_MANY: sub('SUBSCRIBE_TOO_MANY', 403, 'LimitReached', 'Subscription limit reached (%s channels per connection)'),
  SUBSCRIBE_NOT_SIGNED_IN: sub('SUBSCRIBE_NOT_SIGNED_IN', 401, 'AuthError', 'Sign in as this user first'),
  SUBSCRIBE_BAD_SIGNATURE: sub('SUBSCRIBE_BAD_SIGNATURE', 401, 'AuthError', 'Invalid signature for %s'),
  SUBSCRIBE_MEMBER_TOO_LARGE: sub('SUBSCRIBE_MEMBER_TOO_LARGE', 413, 'LimitReached', 'Presence channel_data over %s bytes'),
  SUBSCRIBE_NO_CHANNEL_DATA: sub('SUBSCRIBE_NO_CHANNEL_DATA', 400, 'InvalidChannelData', 'channel_data is required on a presence channel'),
  SUBSCRIBE_CHANNEL_DATA_NOT_JSON: sub('SUBSCRIBE_CHANNEL_DATA_NOT_JSON', 400, 'InvalidChannelData', 'channel_data is not JSON'),
  SUBSCRIBE_NO_USER_ID: sub('SUBSCRIBE_NO_USER_ID', 400, 'InvalidChannelData', 'channel_data needs a user_id (an integer, or a non-empty well-formed string)'),
  SUBSCRIBE_USER_ID_TOO_LONG: sub('SUBSCRIBE_USER_ID_TOO_LONG', 400, 'InvalidChannelData', 'user_id longer than %s'),
  SUBSCRIBE_PRESENCE_FULL: sub('SUBSCRIBE_PRESENCE_FULL', 403, 'LimitReached', 'Presence channel is full (%s members)'),
  SUBSCRIBE_UNAVAILABLE: sub('SUBSCRIBE_UNAVAILABLE', 503, 'ServiceUnavailable', 'The cluster engine is unavailable; retry'),

  // Closes: the upgrade refused (4000–4099 do not reconnect unchanged; 4100–4199 back off), or the connection ended.
  CLOSE_UNKNOWN_APP: close('CLOSE_UNKNOWN_APP', CloseCode.AppNotFound, 'App key not in this cluster'),
  CLOSE_APP_DISABLED: close('CLOSE_APP_DISABLED', CloseCode.AppDisabled, 'App is disabled'),
  CLOSE_OVER_QUOTA: close('CLOSE_OVER_QUOTA', CloseCode.OverQuota, 'App over connection quota'),
  CLOSE_PATH_NOT_FOUND: close('CLOSE_PATH_NOT_FOUND', CloseCode.PathNotFound, 'Path not found'),
  CLOSE_INVALID_VERSION: close('CLOSE_INVALID_VERSION', CloseCode.InvalidVersion, 'Invalid protocol version'),
  CLOSE_UNSUPPORTED_PROTOCOL: close('CLOSE_UNSUPPORTED_PROTOCOL', CloseCode.UnsupportedProtocol, 'Unsupported protocol %s'),
  CLOSE_USER_AUTH_REQUIRED: close('CLOSE_USER_AUTH_REQUIRED', CloseCode.Unauthorized, 'User authentication required: sign in first'),
  CLOSE_TERMINATED: close('CLOSE_TERMINATED', CloseCode.Unauthorized, 'Connection terminated by the app'),
  CLOSE_OVER_CAPACITY: close('CLOSE_OVER_CAPACITY', CloseCode.OverCapacity, 'Server over capacity'),
  CLOSE_ENGINE_UNAVAILABLE: close('CLOSE_ENGINE_UNAVAILABLE', CloseCode.OverCapacity, 'Cluster engine unavailable; retry'),
  CLOSE_SLOW_CONSUMER: close('CLOSE_SLOW_CONSUMER', CloseCode.SlowConsumer, 'Slow consumer: send buffer full'),
  CLOSE_CONNECTION_RATE_LIMITED: close(
    'CLOSE_CONNECTION_RATE_LIMITED',
    CloseCode.ConnectionRateLimited,
    'Too many new connections; retry with back-off',
  ),
  CLOSE_SHUTTING_DOWN: close('CLOSE_SHUTTING_DOWN', CloseCode.Reconnect, 'Server shutting down; reconnect'),
  CLOSE_PONG_TIMEOUT: close('CLOSE_PONG_TIMEOUT', CloseCode.PongNotReceived, 'Pong reply not received'),
  // Closes the WebSocket layer (ws) sends, with its own reason text, for frames RFC 6455 makes it refuse.
  CLOSE_INVALID_FRAME: close('CLOSE_INVALID_FRAME', 1002, 'Invalid WebSocket frame (ws states why)'),
  CLOSE_INVALID_UTF8: close('CLOSE_INVALID_UTF8', 1007, 'Invalid UTF-8 in a text frame (ws states why)'),
  CLOSE_MESSAGE_TOO_BIG: close('CLOSE_MESSAGE_TOO_BIG', 1009, 'Frame over twice MAX_PAYLOAD_BYTES (ws states why)'),
} as const;

/** The name of a registry entry. */
export type ErrorName = keyof typeof Errors;
