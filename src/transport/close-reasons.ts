/** Why connections end or are refused: fixed enums, also the bounded `reason` labels of the connection metrics. */

/** Why an accepted connection closed. */
export type CloseReason =
  | 'client_close'
  | 'server_shutdown'
  | 'pong_timeout'
  | 'slow_consumer'
  | 'protocol_error'
  | 'terminated'
  | 'over_quota'
  | 'error';

/** Why an upgrade was refused before a connection existed (`bad_handshake`: the WebSocket handshake itself, HTTP 400). */
export type RejectReason =
  | 'unknown_app'
  | 'app_disabled'
  | 'over_quota'
  | 'over_capacity'
  | 'bad_protocol'
  | 'bad_handshake'
  | 'rate_limited';
