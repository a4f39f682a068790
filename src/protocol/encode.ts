/**
 * Server → client frames. `data` is always a JSON-encoded string (the protocol's double encoding). A channel event is encoded
 * once per publish and the same string is written to every subscriber.
 */
import { Events } from './events.js';

/** A channel event frame; `data` is the already-serialized payload string. */
export function encodeChannelEvent(event: string, channel: string, data: string, userId?: string): string {
  const frame: { event: string; channel: string; data: string; user_id?: string } = { event, channel, data };
  if (userId !== undefined) frame.user_id = userId;
  return JSON.stringify(frame);
}

/** A protocol frame whose data object is encoded to a string. */
export function encodeProtocol(event: string, data: unknown, channel?: string): string {
  return channel === undefined
    ? JSON.stringify({ event, data: JSON.stringify(data) })
    : JSON.stringify({ event, channel, data: JSON.stringify(data) });
}

/** A protocol frame that carries no `data` at all (`pusher:cache_miss`, as Pusher sends it). */
export function encodeDataless(event: string, channel: string): string {
  return JSON.stringify({ event, channel });
}

/** A socket id as Beacon makes them (and as the HTTP API accepts them): `123.456`. */
export const SOCKET_ID = /^\d+\.\d+$/;

/**
 * `pusher:connection_established`, once per connection: the bytes of `encodeProtocol` for it, from a template (two
 * `JSON.stringify` of objects cost ~1.5 µs of every connect, the template ~0.1). A socket id is digits and a dot, which
 * JSON writes as they are; anything else goes through `encodeProtocol`.
 */
export function encodeConnectionEstablished(socketId: string, activityTimeoutSeconds: number): string {
  if (!SOCKET_ID.test(socketId) || !Number.isSafeInteger(activityTimeoutSeconds)) {
    return encodeProtocol(Events.ConnectionEstablished, { socket_id: socketId, activity_timeout: activityTimeoutSeconds });
  }
  return `{"event":"${Events.ConnectionEstablished}","data":"{\\"socket_id\\":\\"${socketId}\\",\\"activity_timeout\\":${activityTimeoutSeconds}}"}`;
}

/**
 * `pusher_internal:subscription_succeeded` without presence data, once per subscribe: the bytes of `encodeProtocol` for
 * it, with only the channel name stringified.
 */
export function encodeSubscriptionSucceeded(channel: string): string {
  return `{"event":"${Events.SubscriptionSucceeded}","channel":${JSON.stringify(channel)},"data":"{}"}`;
}

/** `pusher:error`; `channel` (top level, like every channel-scoped frame) names the channel a refused client event was for. */
export function encodeError(message: string, code: number | null, channel?: string): string {
  return channel === undefined
    ? JSON.stringify({ event: Events.Error, data: { message, code } })
    : JSON.stringify({ event: Events.Error, channel, data: { message, code } });
}

/** Ping and pong carry an empty data object. */
export const PING_FRAME = JSON.stringify({ event: Events.Ping, data: {} });
export const PONG_FRAME = JSON.stringify({ event: Events.Pong, data: {} });

/** Client event data is re-encoded to the string form whatever the client sent. */
export function payloadString(data: unknown): string {
  return typeof data === 'string' ? data : JSON.stringify(data ?? null);
}
