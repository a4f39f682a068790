/** Typed client → server frames after decoding. */

export interface SubscribeMessage {
  event: 'pusher:subscribe';
  channel: string;
  auth: string | undefined;
  channelData: string | undefined;
}
export interface UnsubscribeMessage {
  event: 'pusher:unsubscribe';
  channel: string;
}
export interface PingMessage {
  event: 'pusher:ping';
}
export interface PongMessage {
  event: 'pusher:pong';
}
export interface SigninMessage {
  event: 'pusher:signin';
  auth: string;
  userData: string;
}
export interface ClientEventMessage {
  event: 'client_event';
  name: string;
  channel: string;
  /** The `data` field as the client sent it (object or string); re-encoded once for delivery. */
  data: unknown;
}

export type ClientMessage =
  | SubscribeMessage
  | UnsubscribeMessage
  | PingMessage
  | PongMessage
  | SigninMessage
  | ClientEventMessage;

/** A decoded frame and the W3C `traceparent` a client may add as a top-level field to continue its own trace. */
export interface Decoded {
  message: ClientMessage;
  traceparent: string | undefined;
}
