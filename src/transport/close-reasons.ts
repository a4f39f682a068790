/** Why connections end or are refused: fixed enums, also the bounded `reason` labels of the connection metrics. */

/** Why an accepted connection closed. */
export const CLOSE_REASONS = [
  'client_close',
  'server_shutdown',
  'pong_timeout',
  'slow_consumer',
  'protocol_error',
  'terminated',
  'error',
] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];

/**
 * Why an upgrade was refused before a connection existed (`bad_handshake`: the WebSocket handshake itself, HTTP 400;
 * `unknown_path`: a path other than `/app/{key}`, 4005 — scanners and misrouted clients, not old pusher-js versions;
 * `descriptor_limit`: a TCP connection closed as soon as it was accepted, the process near its file descriptor limit —
 * http/descriptor-limit.ts).
 */
export const REJECT_REASONS = [
  'unknown_app',
  'app_disabled',
  'over_quota',
  'over_capacity',
  'bad_protocol',
  'unknown_path',
  'bad_handshake',
  'rate_limited',
  'descriptor_limit',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** The refusals of an upgrade whose key named an app, counted (and logged) with its `app_id` (ws-route.ts). */
export const APP_REJECT_REASONS: readonly RejectReason[] = ['app_disabled', 'over_quota', 'over_capacity', 'bad_protocol', 'rate_limited'];
