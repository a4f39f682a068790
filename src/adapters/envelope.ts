/** The message that crosses nodes: one event on one channel, already serialized, with the trace context of its publish. */
import type { SpanContext } from '@opentelemetry/api';
import type { SentKind } from '../protocol/frame-kinds.js';

export interface Envelope {
  appId: string;
  channel: string;
  event: string;
  /** The payload string, delivered as the frame's `data` unchanged. */
  data: string;
  /** Set for client events on presence channels. */
  userId: string | undefined;
  /** This connection does not receive the event (HTTP `socket_id`, the sender of a client event, a presence joiner). */
  excludeSocketId: string | undefined;
  kind: SentKind;
  /**
   * The publish span's context when it was sampled, so the fan-out on every node continues the same trace. In memory it is
   * the SpanContext itself (the local engine hands it over as is); between nodes it travels as a W3C `traceparent`
   * (envelope-codec.ts).
   */
  trace: SpanContext | undefined;
  /** Unix ms when the publish was accepted (broadcast latency is measured from here on other nodes). */
  publishedAt: number;
  /**
   * `performance.now()` when the publish was accepted, on the node that accepted it and only there (never sent): the
   * broadcast latency of an envelope the embedded engine hands over as is, to the microsecond (`secondsSincePublished`).
   */
  acceptedAt?: number | undefined;
  /** Presence member events and the Redis engine's subscription counts: the cluster-wide order of the change (see Adapter `join`). */
  seq?: number | undefined;
}

/**
 * Seconds from a publish's acceptance until now: by this process's monotonic clock when it was accepted here and handed
 * over as is (the embedded engine), else by the wall clock of the node that accepted it, in whole milliseconds (a cluster
 * engine's envelopes, the accepting node's own included). Measured from `Date.now()` alone, a delivery on one node read 0
 * or 1 ms, and `websocket_broadcast_duration_seconds`' sub-millisecond buckets showed what interpolation made up (a review).
 */
export function secondsSincePublished(envelope: Envelope): number {
  if (envelope.acceptedAt !== undefined) return (performance.now() - envelope.acceptedAt) / 1000;
  return Math.max(0, Date.now() - envelope.publishedAt) / 1000;
}
