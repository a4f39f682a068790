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

/** Why an upgrade was refused before a connection existed. */
export type RejectReason = 'unknown_app' | 'app_disabled' | 'over_quota' | 'over_capacity' | 'bad_protocol' | 'rate_limited';
