/**
 * The Envelope as it crosses nodes through a cluster engine: JSON, read back into the same fixed shape. The publish's trace
 * context travels as a W3C `traceparent` string (what every version of Beacon has sent), not as the SpanContext object.
 */
import { isSentKind } from '../protocol/frame-kinds.js';
import { spanContextFromTraceparent, traceparentOfContext } from '../telemetry/tracing.js';
import type { Envelope } from './envelope.js';
import type { EnvelopeStamp } from './envelope-gaps.js';

/**
 * JSON of the envelope; `undefined` fields are left out. `stamp` (the Redis engine's loss detection, envelope-gaps.ts)
 * travels as `stamp`; nodes of a version without it ignore the field.
 */
export function encodeEnvelope(envelope: Envelope, stamp?: EnvelopeStamp): string {
  // `acceptedAt` is this process's clock: it means nothing on another node.
  const { trace, acceptedAt: _local, ...rest } = envelope;
  const json: Partial<EnvelopeJson> = trace === undefined ? rest : { ...rest, traceparent: traceparentOfContext(trace) };
  return JSON.stringify(stamp === undefined ? json : { ...json, stamp });
}

/** The envelope's JSON fields: its own, with the trace context as its `traceparent`, and the sender's stamp. */
type EnvelopeJson = Omit<Envelope, 'trace'> & { traceparent: string; stamp: EnvelopeStamp };

/** The stamp of a decoded message, when it carries a well-formed one. */
function stampOf(o: { stamp?: unknown }): EnvelopeStamp | undefined {
  const s = o.stamp as Partial<EnvelopeStamp> | undefined;
  if (typeof s !== 'object' || s === null) return undefined;
  if (typeof s.node !== 'string' || !Number.isSafeInteger(s.run) || !Number.isSafeInteger(s.n)) return undefined;
  return { node: s.node, run: s.run!, n: s.n! };
}

/** The Envelope from its JSON; absent optional fields become `undefined` so every envelope has the same shape. */
export function decodeEnvelope(message: string): Envelope | undefined {
  return decodeStamped(message)?.envelope;
}

/** The Envelope and the stamp it was sent with (envelope-gaps.ts). */
export function decodeStamped(message: string): { envelope: Envelope; stamp: EnvelopeStamp | undefined } | undefined {
  let o: Partial<EnvelopeJson>;
  try {
    o = JSON.parse(message) as Partial<EnvelopeJson>;
  } catch {
    return undefined;
  }
  if (typeof o.appId !== 'string' || typeof o.channel !== 'string' || typeof o.event !== 'string') return undefined;
  // The kind becomes a metric label on the receiving node: only the fixed enum may pass.
  if (typeof o.data !== 'string' || !isSentKind(o.kind)) return undefined;
  const envelope: Envelope = {
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
  return { envelope, stamp: stampOf(o) };
}
