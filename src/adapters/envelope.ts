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
  /** Unix ms when the publish was accepted (broadcast latency is measured from here). */
  publishedAt: number;
  /** Presence member events and the Redis engine's subscription counts: the cluster-wide order of the change (see Adapter `join`). */
  seq?: number | undefined;
}
