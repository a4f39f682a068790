/**
 * The Envelope as it crosses nodes through a cluster engine: JSON, read back into the same fixed shape. The publish's trace
 * context travels as a W3C `traceparent` string (what every version of Beacon has sent), not as the SpanContext object.
 */
import { isSentKind } from '../protocol/frame-kinds.js';
import { spanContextFromTraceparent, traceparentOfContext } from '../telemetry/tracing.js';
import type { Envelope } from './envelope.js';

/** JSON of the envelope; `undefined` fields are left out. */
export function encodeEnvelope(envelope: Envelope): string {
  const { trace, ...rest } = envelope;
  return JSON.stringify(trace === undefined ? rest : { ...rest, traceparent: traceparentOfContext(trace) });
}

/** The envelope's JSON fields: its own, with the trace context as its `traceparent`. */
type EnvelopeJson = Omit<Envelope, 'trace'> & { traceparent: string };

/** The Envelope from its JSON; absent optional fields become `undefined` so every envelope has the same shape. */
export function decodeEnvelope(message: string): Envelope | undefined {
  let o: Partial<EnvelopeJson>;
  try {
    o = JSON.parse(message) as Partial<EnvelopeJson>;
  } catch {
    return undefined;
  }
  if (typeof o.appId !== 'string' || typeof o.channel !== 'string' || typeof o.event !== 'string') return undefined;
  // The kind becomes a metric label on the receiving node: only the fixed enum may pass.
  if (typeof o.data !== 'string' || !isSentKind(o.kind)) return undefined;
  return {
    appId: o.appId,
    channel: o.channel,
    event: o.event,
    data: o.data,
    userId: o.userId ?? undefined,
    excludeSocketId: o.excludeSocketId ?? undefined,
    kind: o.kind,
    trace: typeof o.traceparent === 'string' ? spanContextFromTraceparent(o.traceparent) : undefined,
    publishedAt: o.publishedAt ?? Date.now(),
    ...(typeof o.seq === 'number' ? { seq: o.seq } : {}),
  };
}
