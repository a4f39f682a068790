/**
 * Member lists sent again after this node may have missed member events (docs/scaling.md, "Presence after a loss").
 *
 * Redis pub/sub delivers a publication to the subscriber connections present at that moment: a `member_removed` that went
 * out while this node's subscriber was reconnecting (a master failing over, a connection Redis closed) is gone, and its
 * clients kept the member until they subscribed again. The engine says when that may begin (`missing`: each presence
 * channel concerned notes the last change it had seen then, `Channel.missedSince`) and when what was missed can be read
 * (`recovered`). Then each noted channel is read again if it changed past that change (`Adapter.membersChangedSince`: the
 * members and the `seq` of the last change among them), and every subscriber is sent the list again, as
 * `pusher_internal:subscription_succeeded` — what answers a repeated subscribe, and what pusher-js (and Echo's `here`)
 * replaces its member list with; the events at or below that `seq` still on their way are not sent after it
 * (`Channel.snapshotSeq`, member-delivery.ts). Events that came meanwhile do not hide a change missed before them: the
 * read is against the change seen when the loss began, not the last one seen since. A list older than events already
 * delivered is read again. Unchanged since: nothing but the `seq` is read, nothing sent.
 *
 * While this node's own subscriptions are being recorded again (Redis lost them), the engine answers `unrecorded`: the
 * list would lack them, and the members it restores would not be told to their own sockets. The channel stays noted and
 * is read once the share is recorded (`recovered` again).
 */
import type { Logger } from 'pino';
import type { Adapter, MissedEventsListener } from '../adapters/adapter.js';
import { logEvent } from '../telemetry/log-events.js';
import type { Channel, Hub } from './hub.js';
import { memberListFrame } from './membership.js';

/** The `seq` that reads a channel's list whatever changed (MEMBERS_SINCE_LUA), and is below any list's, 0 included. */
const READ_WHATEVER_CHANGED = -1;
/** Channels read at once: a node holding thousands of presence channels does not send thousands of reads in one go. */
const READS_IN_FLIGHT = 32;
/** Reads of one channel in a round while each answer is older than the events already delivered (members churning). */
const STALE_READS = 3;
/** A round that left channels unread (the engine failed, or each list was stale) is tried again after this… */
const RETRY_MS = 1000;
/** …at most this many times in a row; then at the engine's next `recovered`. */
const RETRIES = 5;

/** What one round did for one app: logged as one line. */
interface Tally {
  channels: number;
  connections: number;
  unread: number;
}

type Repair = { sent: number } | 'unchanged' | 'unread' | 'later';

/**
 * The listener for `Adapter.onEventsMissed`. A `recovered` during a round is served by one more round after it, so a
 * burst of them costs one read per noted channel per round. `settled` resolves once no round runs or is due (tests).
 */
export function createMemberResync(deps: {
  hub: Hub;
  adapter: Pick<Adapter, 'membersChangedSince'>;
  logger: Pick<Logger, 'info' | 'warn'>;
}): MissedEventsListener & { settled(): Promise<void> } {
  const { hub, adapter, logger } = deps;
  hub.onJoinedDuringLoss = () => recovered();
  let again = false;
  let running: Promise<void> | undefined;
  let retry: NodeJS.Timeout | undefined;
  let retries = 0;

  /** Reads the channel again and sends its list if it changed past `missedSince`. */
  async function repair(appId: string, channel: Channel): Promise<Repair> {
    for (let attempt = 0; attempt < STALE_READS; attempt++) {
      const since = channel.missedSince;
      if (since === undefined) return 'unchanged';
      // A loss begun while the read is under way is not answered by it: the channel stays noted for the next round.
      const losses = channel.losses;
      let answer: Awaited<ReturnType<NonNullable<Adapter['membersChangedSince']>>>;
      try {
        answer = await adapter.membersChangedSince!(appId, channel.name, since);
      } catch {
        // The engine could not answer (EngineUnavailableError): still noted, read at the next round.
        return 'unread';
      }
      // Emptied meanwhile: its subscribers are gone (a channel made since has lists of its own).
      if (hub.channel(appId, channel.name) !== channel) return 'unchanged';
      if (answer === 'unrecorded') return 'later';
      if (answer === 'unchanged') {
        if (channel.losses === losses) channel.missedSince = undefined;
        return 'unchanged';
      }
      // Older than an event its subscribers already got: the list would take that change back. Read again.
      if (answer.seq < channel.seenSeq) continue;
      if (channel.losses === losses) channel.missedSince = undefined;
      channel.seenSeq = answer.seq;
      const frame = memberListFrame(channel.name, answer.members);
      let sent = 0;
      for (const connection of channel.subscribers) {
        // Joined since with a list at least as new.
        if ((channel.snapshotSeq.get(connection) ?? READ_WHATEVER_CHANGED) >= answer.seq) continue;
        channel.snapshotSeq.set(connection, answer.seq);
        if (connection.send(frame, 'presence')) sent++;
      }
      return { sent };
    }
    return 'unread';
  }

  async function round(): Promise<boolean> {
    const targets: [appId: string, channel: Channel][] = [];
    for (const [appId, channel] of hub.presenceChannels()) {
      if (channel.missedSince !== undefined && channel.subscribers.size > 0) targets.push([appId, channel]);
    }
    const tallies = new Map<string, Tally>();
    const tally = (appId: string): Tally => {
      let t = tallies.get(appId);
      if (t === undefined) tallies.set(appId, (t = { channels: 0, connections: 0, unread: 0 }));
      return t;
    };
    let unread = false;
    for (let i = 0; i < targets.length; i += READS_IN_FLIGHT) {
      await Promise.all(
        targets.slice(i, i + READS_IN_FLIGHT).map(async ([appId, channel]) => {
          const repaired = await repair(appId, channel);
          if (repaired === 'unread') {
            tally(appId).unread++;
            unread = true;
          } else if (typeof repaired === 'object' && repaired.sent > 0) {
            tally(appId).channels++;
            tally(appId).connections += repaired.sent;
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
          ? 'presence member lists sent again after missed member events; some channels could not be read yet'
          : 'presence member lists sent again after missed member events',
      );
    }
    return unread;
  }

  async function drain(): Promise<void> {
    let unread = false;
    while (again) {
      again = false;
      unread = await round();
    }
    running = undefined;
    if (!unread) {
      retries = 0;
    } else if (retries < RETRIES && retry === undefined) {
      retries++;
      retry = setTimeout(() => {
        retry = undefined;
        recovered();
      }, RETRY_MS);
      retry.unref();
    }
  }

  function recovered(): void {
    again = true;
    running ??= drain();
  }

  return {
    missing(which, renumbered = false) {
      hub.lossesBegun++;
      for (const [appId, channel] of hub.presenceChannels()) {
        if (!which(appId, channel.name)) continue;
        if (renumbered) {
          // Redis lost its data: a channel's `seq` is gone until its next change (members restored silently make none),
          // so nothing this node saw compares with it. Read whatever changed (-1) and sent to every subscriber, the
          // channel's bookkeeping started afresh (a list answered at `seq` 0 would otherwise read as older than the events
          // seen: a probe's clients kept the members who left while Redis was away, and those of a node that died
          // before it was reaped, for good).
          channel.missedSince = READ_WHATEVER_CHANGED;
          channel.seenSeq = 0;
          channel.snapshotSeq.clear();
        } else {
          // Noted already: read since the earlier change, which covers this loss too.
          channel.missedSince ??= channel.seenSeq;
        }
        channel.losses++;
      }
    },
    recovered,
    async settled() {
      while (running !== undefined) await running;
    },
  };
}
