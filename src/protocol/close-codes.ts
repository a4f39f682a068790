/**
 * Every close code Beacon sends, named, with the reconnect class pusher-js applies to its range (reference: "Close / error
 * codes"). Codes are never reused for another meaning.
 */
export const CloseCode = {
  /** 4001: the app key is unknown. Do not reconnect unchanged. */
  AppNotFound: 4001,
  /** 4003: the app exists but is disabled. */
  AppDisabled: 4003,
  /** 4004: the app is over its connection quota. */
  OverQuota: 4004,
  /** 4005: the path is not /app/{key}. */
  PathNotFound: 4005,
  /** 4006: the protocol version is not a number. */
  InvalidVersion: 4006,
  /** 4007: the protocol version is not supported. */
  UnsupportedProtocol: 4007,
  /** 4009: the connection is unauthorized (user authentication required and not given in time, or terminated). */
  Unauthorized: 4009,
  /** 4100: the server is over capacity (or its cluster engine is unreachable). Reconnect with back-off. */
  OverCapacity: 4100,
  /** 4110: this connection could not keep up (send buffer over SEND_BUFFER_MAX_BYTES). Reconnect with back-off. */
  SlowConsumer: 4110,
  /** 4111: the app is over CONNECTION_RATE_LIMIT_PER_SECOND new connections. Reconnect with back-off. */
  ConnectionRateLimited: 4111,
  /** 4200: generic reconnect (graceful shutdown): reconnect immediately, elsewhere. */
  Reconnect: 4200,
  /** 4201: a server ping was not answered in time. */
  PongNotReceived: 4201,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

/** Codes of `pusher:error` frames sent without closing the connection. */
export const ErrorCode = {
  /** 4009: subscription or signin not authorized. */
  Unauthorized: 4009,
  /** 4301: client event rate limit exceeded. */
  ClientEventRateLimited: 4301,
  /** 4302: watchlist over its limit. */
  WatchlistLimit: 4302,
  /** 4310: client event refused: client events are not enabled for this app. (4310–4319: a refused client event.) */
  ClientEventsDisabled: 4310,
  /** 4311: client event refused: not allowed on this channel type (only private and presence, never encrypted). */
  ClientEventChannelNotAllowed: 4311,
  /** 4312: client event refused: the sender is not subscribed to the channel. */
  ClientEventNotSubscribed: 4312,
  /** 4313: client event refused: event name longer than MAX_EVENT_NAME_LENGTH. */
  ClientEventNameTooLong: 4313,
  /** 4314: client event refused: data larger than MAX_PAYLOAD_BYTES. */
  ClientEventTooLarge: 4314,
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];
