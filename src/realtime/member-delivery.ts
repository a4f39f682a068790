/**
 * The envelope handler in front of the fan-out: what makes presence events exact across nodes.
 *
 * - A subscription being recorded cluster-wide is not in the hub yet; every envelope for its channel is held for it
 *   (`Hub.holdForJoining`) and sent right after its `subscription_succeeded` (`flushHeld`), so nothing published after
 *   the member list was taken is lost, whichever Redis connection delivered first.
 * - Member events and the Redis engine's subscription counts carry the cluster-wide `seq` of their change; a subscriber
 *   whose answer already had that change (its snapshot `seq` is at or above it: its member list, or its own count) is
 *   skipped, so no member is announced twice and no joiner is left on an older count.
 * Every other envelope goes to the fan-out unchanged.
 */
import { secondsSincePublished, type Envelope } from '../adapters/envelope.js';
import { encodeChannelEvent } from '../protocol/encode.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Connection } from '../transport/connection.js';
import type { Hub } from './hub.js';

/** Wraps the fan-out with the presence rules above. */
export function gateMemberEvents(
  hub: Hub,
  metrics: Pick<Metrics, 'messagesSent' | 'broadcast'>,
  fanout: (envelope: Envelope) => void,
): (envelope: Envelope) => void {
  return function deliver(envelope: Envelope): void {
    hub.holdForJoining(envelope);
    if (envelope.seq === undefined) {
      fanout(envelope);
      return;
    }
    const channel = hub.channel(envelope.appId, envelope.channel);
    if (channel === undefined) return;
    if (envelope.seq > channel.seenSeq) channel.seenSeq = envelope.seq;
    // The subscribers whose snapshot already has this change. A snapshot below it is dropped: the channel's envelopes
    // come in `seq` order, so every later one is newer still. What remains are the few subscribers that joined while the
    // envelope was on its way; with none, the fan-out sends it as any other envelope.
    let skip: Set<Connection> | undefined;
    for (const [connection, seq] of channel.snapshotSeq) {
      if (seq >= envelope.seq) (skip ??= new Set()).add(connection);
      else channel.snapshotSeq.delete(connection);
    }
    if (skip === undefined) {
      fanout(envelope);
      return;
    }
    const frame = Buffer.from(encodeChannelEvent(envelope.event, envelope.channel, envelope.data, envelope.userId));
    let recipients = 0;
    for (const connection of channel.subscribers) {
      if (connection.socketId === envelope.excludeSocketId || skip.has(connection)) continue;
      if (connection.sendFrame(frame, frame.length)) recipients++;
    }
    metrics.messagesSent(envelope.appId, envelope.kind, frame.length, recipients);
    metrics.broadcast(channel.kind.type, recipients, secondsSincePublished(envelope));
  };
}

/** Sends a new subscriber the events held while it joined: member events its member list (at `seq`) lacks, and the rest. */
export function flushHeld(connection: Connection, held: readonly Envelope[], seq: number): void {
  for (const envelope of held) {
    if (envelope.excludeSocketId === connection.socketId) continue;
    if (envelope.seq !== undefined && envelope.seq <= seq) continue;
    connection.send(encodeChannelEvent(envelope.event, envelope.channel, envelope.data, envelope.userId), envelope.kind);
  }
}
