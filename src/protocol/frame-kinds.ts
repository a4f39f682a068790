/**
 * What a frame is, from the server's point of view: the kinds of frames clients send and of frames the server writes.
 * Fixed enums, so they double as bounded metric labels (`kind` of websocket_messages_received/sent_total).
 */

/** A client frame: one of the client events the router knows, or `invalid` for anything it refused. */
export type ReceivedKind = 'subscribe' | 'unsubscribe' | 'ping' | 'pong' | 'client_event' | 'signin' | 'invalid';

/** Every kind of frame the server writes: app events apart from protocol frames. */
export const SENT_KINDS = ['channel_event', 'client_event', 'presence', 'protocol'] as const;

/** A frame the server writes. */
export type SentKind = (typeof SENT_KINDS)[number];

/** Whether a value read from outside (an envelope from another node) is a SentKind. */
export function isSentKind(value: unknown): value is SentKind {
  return typeof value === 'string' && (SENT_KINDS as readonly string[]).includes(value);
}
