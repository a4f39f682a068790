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
  /** 4100: the server is over capacity, or this connection cannot keep up (slow consumer). Reconnect with back-off. */
  OverCapacity: 4100,
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
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];
