/**
 * Which of the HTTP API's error answers count in `websocket_api_refusals_total`, and under which `reason`: the registry
 * error's name lower-cased without `API_` (`API_INVALID_JSON` → `invalid_json`). Every error the API answers is here except
 * those counted by reason where they are decided, and the server's own failure:
 * - a refused signature (`API_UNKNOWN_APP`, `API_UNKNOWN_KEY`, `API_EXPIRED`, `API_BAD_SIGNATURE`, `API_BODY_MD5`):
 *   `websocket_api_auth_failures_total`;
 * - the rate limit (`API_RATE_LIMITED`): `websocket_rate_limit_triggered_total{scope="http_api"}`;
 * - a path no route matches (`API_NOT_FOUND`, answered by not-found.ts): `http_server_request_duration_seconds{http_route="unmatched"}`;
 * - what Node's parser, the server's guard or the router refused before any route (client-errors.ts, http-server.ts,
 *   params.ts): `websocket_http_malformed_requests_total`;
 * - `API_INTERNAL` (500): not a refusal; logged at error level, counted by status in `http_server_request_duration_seconds`.
 * The two 503s (`API_SHUTTING_DOWN`, `API_ENGINE_UNAVAILABLE`) are the server's state, not the caller's fault, but a caller
 * was refused all the same and nothing else tells them apart (both are 503 on the same routes): they are counted here.
 *
 * Looked up by the registry entry itself (one Map lookup, no string built per refusal).
 */
import { Errors, type HttpError } from '../protocol/errors.js';
import type { ApiRefusalReason } from '../telemetry/metrics.js';

export const API_REFUSALS: ReadonlyMap<HttpError, ApiRefusalReason> = new Map<HttpError, ApiRefusalReason>([
  // Refused by a hook before the body is read.
  [Errors.API_INVALID_REQUEST, 'invalid_request'],
  [Errors.API_APP_DISABLED, 'app_disabled'],
  [Errors.API_UNSUPPORTED_ENCODING, 'unsupported_encoding'],
  [Errors.API_SHUTTING_DOWN, 'shutting_down'],
  // The body as fastify and the API's parser read it.
  [Errors.API_INVALID_JSON, 'invalid_json'],
  [Errors.API_UNSUPPORTED_MEDIA_TYPE, 'unsupported_media_type'],
  [Errors.API_BODY_TOO_LARGE, 'body_too_large'],
  // A publish or a batch (publish-request.ts).
  [Errors.API_BODY_NOT_OBJECT, 'body_not_object'],
  [Errors.API_EVENT_NAME_INVALID, 'event_name_invalid'],
  [Errors.API_EVENT_NAME_TOO_LONG, 'event_name_too_long'],
  [Errors.API_EVENT_NAME_RESERVED, 'event_name_reserved'],
  [Errors.API_DATA_NOT_STRING, 'data_not_string'],
  [Errors.API_DATA_TOO_LARGE, 'data_too_large'],
  [Errors.API_CHANNEL_NOT_STRING, 'channel_not_string'],
  [Errors.API_CHANNEL_OR_CHANNELS, 'channel_or_channels'],
  [Errors.API_CHANNELS_EMPTY, 'channels_empty'],
  [Errors.API_TOO_MANY_CHANNELS, 'too_many_channels'],
  [Errors.API_INVALID_CHANNEL_NAME, 'invalid_channel_name'],
  [Errors.API_ENCRYPTED_NOT_ALONE, 'encrypted_not_alone'],
  [Errors.API_INVALID_SOCKET_ID, 'invalid_socket_id'],
  [Errors.API_UNKNOWN_INFO, 'unknown_info'],
  [Errors.API_BATCH_NOT_ARRAY, 'batch_not_array'],
  [Errors.API_BATCH_TOO_LARGE, 'batch_too_large'],
  [Errors.API_ENGINE_UNAVAILABLE, 'engine_unavailable'],
  // A channel query (routes/channels.ts).
  [Errors.API_USER_COUNT_NEEDS_PREFIX, 'user_count_needs_prefix'],
  [Errors.API_USER_COUNT_NOT_PRESENCE, 'user_count_not_presence'],
  [Errors.API_CACHE_NOT_CACHE_CHANNEL, 'cache_not_cache_channel'],
  [Errors.API_USERS_NOT_PRESENCE, 'users_not_presence'],
]);
