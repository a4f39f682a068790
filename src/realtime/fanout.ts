/**
 * Delivery on this node: one path for every envelope, whether it was published here or on another node.
 * The frame is encoded once and the same string written to every subscriber; the per-recipient loop allocates nothing.
 */
import { secondsSincePublished, type Envelope } from '../adapters/envelope.js';
import { encodeChannelEvent } from '../protocol/encode.js';
import type { Metrics } from '../telemetry/metrics.js';
import { Attr, contextOfSpanContext, startDeliverSpan } from '../telemetry/tracing.js';
import { TextFrame } from '../transport/preframed.js';
import type { Hub } from './hub.js';

export interface FanoutDeps {
  hub: Hub;
  metrics: Metrics;
}

/** Returns the handler the adapter calls for every envelope. */
export function createFanout({ hub, metrics }: FanoutDeps): (envelope: Envelope) => void {
  return function deliver(envelope: Envelope): void {
    const channel = hub.channel(envelope.appId, envelope.channel);
    if (channel === undefined) return;
    const type = channel.kind.type;
    const span =
      envelope.trace === undefined
        ? undefined
        : startDeliverSpan(type, envelope.channel, envelope.appId, contextOfSpanContext(envelope.trace));
    // Encoded once, to UTF-8 bytes once, framed once: every subscriber is written the same wire bytes.
    const frame = new TextFrame(Buffer.from(encodeChannelEvent(envelope.event, envelope.channel, envelope.data, envelope.userId)));
    const bytes = frame.payload.length;
    const exclude = envelope.excludeSocketId;
    let recipients = 0;
    let dropped = 0;
    for (const connection of channel.subscribers) {
      // `exclude` is tested first: most envelopes exclude nobody, and a string compared with undefined at one site makes V8
      // compile that `===` as a call to its generic comparison, once per recipient (~1 % of a fan-out's CPU in a profile).
      if (exclude !== undefined && connection.socketId === exclude) continue;
      if (connection.sendTextFrame(frame)) recipients++;
      else dropped++;
    }
    metrics.messagesSent(envelope.appId, envelope.kind, bytes, recipients);
    // Frames for subscribers that are closing (a slow consumer cut by this very fan-out, a close in flight) are counted,
    // once per fan-out; the disconnect itself was counted and logged by the connection.
    if (dropped > 0) metrics.backpressure(envelope.appId, 'dropped', dropped);
    metrics.broadcast(type, recipients, secondsSincePublished(envelope));
    if (span !== undefined) {
      if (span.isRecording()) {
        span.setAttribute(Attr.Recipients, recipients);
        span.setAttribute(Attr.Bytes, bytes);
        span.setAttribute(Attr.Dropped, dropped);
      }
      span.end();
    }
  };
}
