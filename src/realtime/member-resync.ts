/**
 * Member lists sent again after this node may have missed member events (docs/scaling.md, "Presence after a loss").
 *
 * Redis pub/sub delivers a publication to the subscriber connections present at that moment: a `member_removed` that went
 * out while this node's subscriber was reconnecting (a master failing over, a connection Redis closed) is gone, and its
 * clients keep the member until they subscribe again. The engine says when that may have happened
 * (`Adapter.onEventsMissed`); then each presence channel concerned that this node has subscribers of is read again if it
 * changed past the last change this node has seen of it (`Channel.seenSeq`; `Adapter.membersChangedSince`: the members
 * and the `seq` of the last change among them). A change it missed: every subscriber is sent the list again, as
 * `pusher_internal:subscription_succeeded` — what answers a repeated subscribe, and what pusher-js (and Echo's `here`)
 * replaces its member list with — and the events at or below that `seq` still on their way are not sent to it again
 * (`Channel.snapshotSeq`, member-delivery.ts). No change past it: nothing is read but the `seq`, nothing sent (also when
 * the engine lost its data and the members are being recorded again without their events: the clients' lists are right,
 * and a list given meanwhile makes the engine announce those restored after it, as after a join).
 */
import type { Logger } from 'pino';
import type { Adapter } from '../adapters/adapter.js';
import { logEvent } from '../telemetry/log-events.js';
import type { Hub } from './hub.js';
import { memberListFrame } from './membership.js';

/** Snapshots read at once: a node holding thousands of presence channels does not send thousands of reads in one go. */
const READS_IN_FLIGHT = 32;

type Which = (appId: string, channel: string) => boolean;

/** What one round did for one app: logged as one line. */
interface Tally {
  channels: number;
  connections: number;
  unread: number;
}

/**
 * The handler for `Adapter.onEventsMissed`. Requests made while a round runs are served by one more round after it, so
 * a burst of them (a gap on each of many channels) costs one read per channel per round, never one round per request.
 * Each request resolves once the round serving it ended (never rejects).
 */
export function createMemberResync(deps: {
  hub: Hub;
  adapter: Pick<Adapter, 'membersChangedSince'>;
  logger: Pick<Logger, 'info' | 'warn'>;
}): (which: Which) => Promise<void> {
  const { hub, adapter, logger } = deps;
  let queued: { which: Which; served: () => void }[] = [];
  let running = false;

  async function round(which: Which): Promise<void> {
    const targets: [appId: string, name: string][] = [];
    for (const [appId, channel] of hub.presenceChannels()) {
      if (channel.subscribers.size > 0 && which(appId, channel.name)) targets.push([appId, channel.name]);
    }
    const tallies = new Map<string, Tally>();
    const tally = (appId: string): Tally => {
      let t = tallies.get(appId);
      if (t === undefined) tallies.set(appId, (t = { channels: 0, connections: 0, unread: 0 }));
      return t;
    };
    for (let i = 0; i < targets.length; i += READS_IN_FLIGHT) {
      await Promise.all(
        targets.slice(i, i + READS_IN_FLIGHT).map(async ([appId, name]) => {
          const sent = await resend(appId, name);
          if (sent === undefined) tally(appId).unread++;
          else if (sent > 0) {
            tally(appId).channels++;
            tally(appId).connections += sent;
          }
        }),
      );
    }
    for (const [appId, t] of tallies) {
      logEvent(
        logger,
        t.unread > 0 ? 'warn' : 'info',
        { event: 'presence_resynced', app_id: appId, channels: t.channels, connections: t.connections, unread: t.unread },
        t.unread > 0
          ? 'presence member lists sent again after missed member events; some channels could not be read'
          : 'presence member lists sent again after missed member events',
      );
    }
  }

  /** Sends the channel's list again to its subscribers when it changed unseen: how many it went to; undefined unread. */
  async function resend(appId: string, name: string): Promise<number | undefined> {
    const seen = hub.channel(appId, name)?.seenSeq ?? 0;
    let snapshot;
    try {
      snapshot = await adapter.membersChangedSince!(appId, name, seen);
    } catch {
      // The engine could not answer (EngineUnavailableError): the channel is counted unread, and read again at the next
      // request (the subscriber's next reconnection, the channel's next gap).
      return undefined;
    }
    // Read again after the wait: the channel may have emptied (and be another object now), or the events that changed it
    // have come meanwhile.
    const channel = hub.channel(appId, name);
    if (snapshot === undefined || channel === undefined || snapshot.seq <= channel.seenSeq) return 0;
    channel.seenSeq = snapshot.seq;
    const frame = memberListFrame(name, snapshot.members);
    let sent = 0;
    for (const connection of channel.subscribers) {
      // Joined since with a list at least as new.
      if ((channel.snapshotSeq.get(connection) ?? 0) >= snapshot.seq) continue;
      channel.snapshotSeq.set(connection, snapshot.seq);
      if (connection.send(frame, 'presence')) sent++;
    }
    return sent;
  }

  async function drain(): Promise<void> {
    try {
      while (queued.length > 0) {
        const batch = queued;
        queued = [];
        try {
          await round((appId, channel) => batch.some((request) => request.which(appId, channel)));
        } finally {
          for (const request of batch) request.served();
        }
      }
    } finally {
      running = false;
    }
  }

  return (which) =>
    new Promise<void>((served) => {
      queued.push({ which, served });
      if (running) return;
      running = true;
      void drain();
    });
}
