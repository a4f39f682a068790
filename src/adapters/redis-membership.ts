/**
 * Cluster-wide membership in Redis: `join` / `leave` run the scripts of redis-scripts.ts on the channel's slot; the
 * queries read the same keys; `reap` removes a dead node's share of every channel it held; `pruneChannel` removes what
 * this node's share of a channel holds that the node no longer does (after Redis went back to an older state).
 *
 * Two indexes outside the channel's slot are kept beside the scripts:
 * - `nodeChannels(node)`: added to before the node's first subscription to a channel, removed from after its last one
 *   left (and only if none came back meanwhile), so a crash at any point leaves every channel the node holds listed.
 * - `appChannels(app)`: added to after a join occupied the channel, removed from after a leave vacated it; each write is
 *   followed by a reading of the channel's total and written again while they disagree (`reconcileIndex`), so GET
 *   /channels misses nothing, and an empty channel another node's change left listed is removed. Users' own channels
 *   (`#server-to-user-`) are never listed: GET /channels does not answer them.
 */
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import type {
  ChannelCounts,
  ChannelQuery,
  JoinOutcome,
  LeaveOutcome,
  MemberRef,
  MemberSnapshot,
  ReapedChannel,
  TakeBackOutcome,
} from './adapter.js';
import { isUserChannel } from '../protocol/channel-name.js';
import { COUNT_INTERVAL_MS, envelopeHead, memberAddedData, memberRemovedData } from './membership-events.js';
import { globEscape, type RedisKeys } from './redis-keys.js';
import {
  COUNT_LUA,
  JOIN_LUA,
  LEAVE_LUA,
  REAP_CONNECTIONS_LUA,
  REAP_LUA,
  REAP_USERS_LUA,
  RELEASE_LUA,
  MEMBERS_SINCE_LUA,
  PRUNE_LUA,
  RESERVE_LUA,
  Script,
  STILL_GONE_LUA,
  USER_PRESENCE_LUA,
} from './redis-scripts.js';

const count = new Script(COUNT_LUA);
const join = new Script(JOIN_LUA);
const leave = new Script(LEAVE_LUA);
const reap = new Script(REAP_LUA);
const reserve = new Script(RESERVE_LUA);
const release = new Script(RELEASE_LUA);
const reapConnections = new Script(REAP_CONNECTIONS_LUA);
const userPresence = new Script(USER_PRESENCE_LUA);
const reapUsers = new Script(REAP_USERS_LUA);
const membersSince = new Script(MEMBERS_SINCE_LUA);
const prune = new Script(PRUNE_LUA);
const stillGone = new Script(STILL_GONE_LUA);

/**
 * How long a leave's receipt (LEAVE_LUA) is kept: its retry comes within a second or two of the late attempt (the engine
 * tries a failed leave again every second while Redis answers, and on reconnecting, at most a second after); 10 s also
 * covers a reconnection of a few seconds. Only leaves that changed something write one.
 */
export const LEAVE_RECEIPT_TTL_MS = 10_000;

/**
 * A leave script that runs this long after it was sent writes its receipt (LEAVE_LUA); one on time does not. Half the
 * engine's command timeout (1 s, after which the caller gives up and tries again): Redis' clock and the node's may differ
 * by up to that much either way before a receipt is missed (it was never written before) or written on time too (the
 * cost of a key with an expiry per leave that changed something).
 */
export const LEAVE_RECEIPT_AFTER_MS = 500;

/**
 * How long a reap step's receipt (REAP_LUA) is kept when its answer never came: the next attempt comes about a node TTL
 * after the one that timed out (the reaper shortens its lock to one), and the step itself may run only when its stalled
 * master reads again. Written by reaps of dead nodes only, one per channel that changed.
 */
export const REAP_RECEIPT_TTL_MS = 60_000;

/**
 * How many times a node writes the app's index of a channel before it leaves it as it is (`reconcileIndex`): each round
 * is one more node's change read between the write and its check.
 */
const INDEX_ROUNDS = 5;

/** A dead node's signed-in users of an app reaped per script (`reapUsers`). */
const REAP_USERS_AT_ONCE = 1000;

/** Users' own channels an earlier version listed, removed from the app's index per command (`dropUsersListed`). */
const USERS_UNLISTED_AT_ONCE = 1000;

/** Channels whose counts GET /channels reads at once (`channels`): up to twice as many commands in flight. */
export const CHANNELS_READ_AT_ONCE = 256;
/** Index entries Redis looks at per `SSCAN` step of a prefixed GET /channels (`listed`). */
const LISTED_SCAN_COUNT = 1000;

/** The message of a signed-in user's cluster-wide transition, on the app's watch channel. */
export interface UserPresenceMessage {
  appId: string;
  userId: string;
  online: boolean;
}

/** What a reap (`RedisMembership.reap`) removed, and what it left for a later attempt. */
export interface ReapOutcome {
  /** What changed, per channel (for the webhooks): members removed, vacated, or a subscription count published. */
  channels: ReapedChannel[];
  /** The node's apps whose connections or signed-in users this attempt did not remove (a step failed, or not reached). */
  appsLeft: number;
  /** The node's channels whose share this attempt did not remove (their step failed, or not reached). */
  channelsLeft: number;
  /** The first failure's error, if a step failed. */
  error?: string;
  /** Everything removed and the node's indexes deleted; false too when `back` stopped it. */
  complete: boolean;
}

export class RedisMembership {
  /** `[appId, channel]` JSON → subscriptions this node holds (recorded or being recorded). */
  private readonly held = new Map<string, number>();
  /** Apps this node has listed in its `nodeApps` set since Redis was last (re)connected: no SADD per reserved connection. */
  private readonly listedApps = new Set<string>();
  /** Empty channels GET /channels met that are being unlisted (`dropListed`). */
  private readonly dropping = new Set<string>();
  /** `[appId, channel]` JSON → the trailing count armed for a change of this node's that the throttle held back. */
  private readonly countTimers = new Map<string, NodeJS.Timeout>();
  /** Leaves named so far (`newLeave`). */
  private leaves = 0;
  private closed = false;

  constructor(
    private readonly client: Redis | Cluster,
    private readonly keys: RedisKeys,
    private readonly nodeId: string,
    /** `PUBLISH` or `SPUBLISH` (sharded pub/sub on Redis Cluster). */
    private readonly publishCommand: string,
    /** Whether the app opted in to subscription_count; for the others the scripts get no count head and publish none. */
    private readonly countsSubscriptions: (appId: string) => boolean = () => true,
    /** Told each trailing count this node published (the counts of joins, leaves and reaps are in their outcomes). */
    private readonly countPublished: (appId: string, channel: string, count: number) => void = () => {},
  ) {}

  /** The count head a script publishes subscription_count with, or '' (the script then publishes none). */
  private countHead(appId: string, channel: string, excludeSocketId?: string): string {
    // A user's own channel is no channel of the app's: not counted (channel-name.ts `isUserChannel`).
    return this.countsSubscriptions(appId) && !isUserChannel(channel) ? envelopeHead(appId, channel, 'count', excludeSocketId) : '';
  }

  /**
   * A change of this node's that the throttle of big channels held back (the script said how long it waits): once that
   * time has passed, the channel's count as it is then is published, unless it is the one last published or another
   * node's change opened a new interval meanwhile (the script then says how long to wait again). One timer per channel
   * at most. A run that fails (Redis down) is tried again an interval later; the next change would publish anyway.
   */
  private trailingCount(appId: string, channel: string, waitMs: number): void {
    const pair = JSON.stringify([appId, channel]);
    if (waitMs <= 0 || this.closed || this.countTimers.has(pair)) return;
    const timer = setTimeout(() => {
      this.countTimers.delete(pair);
      this.publishCount(appId, channel, false).then(
        (wait) => this.trailingCount(appId, channel, wait),
        () => this.trailingCount(appId, channel, COUNT_INTERVAL_MS),
      );
    }, waitMs);
    timer.unref();
    this.countTimers.set(pair, timer);
  }

  /**
   * Runs the count script: publishes the channel's count if it moved; `now` whatever the interval. A count it published
   * is reported to `countPublished` (its webhook goes out from this node). The ms to wait, or 0.
   */
  private async publishCount(appId: string, channel: string, now: boolean): Promise<number> {
    const k = this.keys.channel(appId, channel);
    const args = [this.countHead(appId, channel), k.events, this.publishCommand, now ? '1' : '0'];
    const [published, wait] = (await count.run(this.client, [k.state], args)) as [number, number];
    if (published >= 0) this.countPublished(appId, channel, published);
    return wait;
  }

  /**
   * The trailing counts still armed go out now, whatever the interval, and are reported. For when this node's changes are
   * over (the drain's settle, once every connection is gone; the engine's close): no one else would publish them, its
   * held-back changes being its own. Never rejects.
   */
  async publishHeldCounts(): Promise<void> {
    const pending = [...this.countTimers.entries()];
    this.countTimers.clear();
    await Promise.all(
      pending.map(async ([pair, timer]) => {
        clearTimeout(timer);
        const [appId, channel] = JSON.parse(pair) as [string, string];
        await this.publishCount(appId, channel, true).catch(() => undefined);
      }),
    );
  }

  /** The engine is closing: the trailing counts still armed go out now (publishHeldCounts), and no more are armed. */
  async close(): Promise<void> {
    this.closed = true;
    await this.publishHeldCounts();
  }

  private scriptKeys(appId: string, channel: string, node: string): string[] {
    const k = this.keys.channel(appId, channel);
    return [k.state, k.users, k.info, this.keys.share(appId, channel, node), this.keys.subscriptions(appId, channel, node)];
  }

  /**
   * Records a subscription (the join script). `again`: an earlier attempt of this join got no answer and may have run;
   * the script then answers what that attempt changed, if it did (JOIN_LUA). An attempt that fails keeps its hold on the
   * node's channel index (it may have been recorded late: a reap of this node, or its own at a drain, must find the
   * channel); the next attempt takes it over, or its take-back (`takeBack`) releases it.
   */
  async join(
    appId: string,
    channel: string,
    socketId: string,
    member: MemberRef | null,
    maxMembers: number,
    again = false,
  ): Promise<JoinOutcome> {
    const pair = JSON.stringify([appId, channel]);
    const n = again ? (this.held.get(pair) ?? 0) : (this.held.get(pair) ?? 0) + 1;
    this.held.set(pair, n);
    // Tried again: listed again too (the earlier attempt's SADD may be what failed).
    if (n === 1 || again) await this.client.sadd(this.keys.nodeChannels(this.nodeId), pair);
    const outcome = await this.record(appId, channel, socketId, member, maxMembers, true, false, again);
    // Refused: the script recorded nothing, so the node's channel index forgets the channel if nothing else holds it.
    if (!outcome.admitted && this.unhold(pair)) void this.unlistNode(pair);
    return outcome;
  }

  /**
   * Records again a subscription this node holds, after its share was lost (Redis restarted empty, or another node reaped
   * this one): the node's channel index and the join script, which changes nothing for a subscription still recorded. It
   * counts no other local hold: the subscription's `leave` comes once. After a reap its `member_added` goes to the socket
   * itself too: that socket was sent its own `member_removed`. With `restore` (Redis lost its data: nobody was told the
   * member left) the script publishes no `member_added` unless a subscriber was listed the channel's members since (the
   * script says why), and then not to the socket itself.
   */
  async rejoin(
    appId: string,
    channel: string,
    socketId: string,
    member: MemberRef | null,
    maxMembers: number,
    restore = false,
  ): Promise<JoinOutcome> {
    await this.client.sadd(this.keys.nodeChannels(this.nodeId), JSON.stringify([appId, channel]));
    const outcome = await this.record(appId, channel, socketId, member, maxMembers, restore, restore);
    // Listed again whatever the script found: with a Redis Cluster, the app's index (one key, on one shard) may be what
    // was lost while the channel's keys (on others) were not, and then the script occupies nothing and `record` lists
    // nothing: GET /channels missed every channel still occupied, for good.
    if (outcome.admitted) this.list(appId, channel);
    return outcome;
  }

  /**
   * The join script: records the subscription (and member) unless the presence channel is full, and what it changed. Its
   * member and count events skip the joining socket when `skipJoiner` (it gets the join's answer instead); `restore` as
   * in `rejoin`, `again` as in `join`.
   */
  private async record(
    appId: string,
    channel: string,
    socketId: string,
    member: MemberRef | null,
    maxMembers: number,
    skipJoiner = true,
    restore = false,
    again = false,
  ): Promise<JoinOutcome> {
    const excluded = skipJoiner ? socketId : undefined;
    const k = this.keys.channel(appId, channel);
    const countHead = member === null ? this.countHead(appId, channel, excluded) : '';
    const result = (await join.run(this.client, this.scriptKeys(appId, channel, this.nodeId), [
      this.keys.nodeField(this.nodeId),
      member?.userId ?? '',
      member === null ? '' : storedInfo(member),
      maxMembers,
      envelopeHead(appId, channel, 'added', excluded),
      member === null ? '""' : JSON.stringify(memberAddedData(member)),
      countHead,
      k.events,
      this.publishCommand,
      socketId,
      restore ? '1' : '',
      again ? '1' : '',
    ])) as [number, number, number, string, string[], number, number?, number?];
    const [admitted, occupied, added, seq, flat, published, countWait = 0, total = -1] = result;
    if (admitted !== 1) return { admitted: false, occupied: false, memberAdded: false, members: new Map(), seq: 0 };
    this.trailingCount(appId, channel, countWait);
    if (occupied === 1) this.list(appId, channel);
    const counted = published >= 0 ? published : undefined;
    // Held back: the joiner is told the count with it all the same (an app that does not count sends no count head).
    const heldCount = counted === undefined && countHead !== '' && total > 0 ? total : undefined;
    return {
      admitted: true,
      occupied: occupied === 1,
      memberAdded: added === 1,
      members: flatMembers(flat),
      seq: Number(seq),
      count: counted,
      heldCount,
    };
  }

  /** A name for one leave, the same for all its attempts (`leave`'s `receipt`): unique on this node. */
  newLeave(): string {
    return String(++this.leaves);
  }

  /**
   * Removes the subscription of `socketId` (nothing if it is not recorded: the script checks), and its join's hold on the
   * node's channel index (a join given up keeps it until its take-back: `join`). `receipt` names this leave
   * (`newLeave`): a caller that tries it again after a failure passes the same, and gets the outcome of an earlier
   * attempt that got no answer in time but ran (LEAVE_LUA).
   */
  async leave(
    appId: string,
    channel: string,
    socketId: string,
    member: MemberRef | null,
    receipt = this.newLeave(),
  ): Promise<LeaveOutcome> {
    return (await this.runLeave(appId, channel, socketId, member, receipt, false)).outcome;
  }

  /**
   * Takes back a join its caller gave up (the adapter's `abandonJoin`), which may have run late: a leave of its socket,
   * answered with what it changed that no webhook told. The late join's own changes (channel occupied, member added:
   * JOIN_LUA's flags) were announced to nobody, so their undoing is not either; but the take-back may also be what
   * removes a member or vacates a channel that others' announced changes made (another subscription of the channel
   * left meanwhile, which the late record made change nothing), and a change of the late join that the take-back leaves
   * standing (another connection of the user joined meanwhile, finding the user present) is announced now (a review:
   * `member_removed` and `channel_vacated` never went out, the receiver kept the channel occupied for good).
   */
  async takeBack(appId: string, channel: string, socketId: string, member: MemberRef | null, receipt: string): Promise<TakeBackOutcome> {
    const { outcome, removed, vacated, joined } = await this.runLeave(appId, channel, socketId, member, receipt, true);
    const occupied = joined.includes('o');
    const added = joined.includes('a');
    // 2: removed or vacated by a late attempt and changed back since (another connection's join, which told its own).
    const memberRemoved = !added && removed === 1;
    return {
      occupied: occupied && vacated === 0,
      memberAdded: added && removed === 0,
      memberRemoved,
      vacated: !occupied && vacated === 1,
      count: outcome.count,
      ...(memberRemoved && outcome.removedUserId !== undefined ? { removedUserId: outcome.removedUserId } : {}),
    };
  }

  private async runLeave(
    appId: string,
    channel: string,
    socketId: string,
    member: MemberRef | null,
    receipt: string,
    takeBack: boolean,
  ): Promise<{ outcome: LeaveOutcome; removed: number; vacated: number; joined: string }> {
    const pair = JSON.stringify([appId, channel]);
    const k = this.keys.channel(appId, channel);
    const scriptKeys = [...this.scriptKeys(appId, channel, this.nodeId), this.keys.leaveReceipt(appId, channel, this.nodeId, receipt)];
    // member_removed echoes the id as member_added did (the member's first connection's signature), which only the
    // script knows: both forms go with it.
    const asNumber = member === null ? undefined : Number(member.userId);
    const [removed, vacated, countWait = 0, published = -1, joined = '', numeric = -1] = (await leave.run(this.client, scriptKeys, [
      this.keys.nodeField(this.nodeId),
      member?.userId ?? '',
      envelopeHead(appId, channel, 'removed'),
      member === null ? '""' : JSON.stringify(memberRemovedData({ userId: member.userId, signedUserId: member.userId })),
      member === null ? this.countHead(appId, channel) : '',
      k.events,
      this.publishCommand,
      socketId,
      LEAVE_RECEIPT_TTL_MS,
      Date.now() + LEAVE_RECEIPT_AFTER_MS,
      takeBack ? '1' : '',
      member !== null && String(asNumber) === member.userId ? JSON.stringify(memberRemovedData({ userId: member.userId, signedUserId: asNumber! })) : '',
    ])) as [number, number, number?, number?, string?, number?];
    this.trailingCount(appId, channel, countWait);
    const counted = published >= 0 ? published : undefined;
    const outcome: LeaveOutcome = { memberRemoved: removed === 1, vacated: vacated === 1, count: counted };
    if (removed === 1 && member !== null && numeric >= 0) outcome.removedUserId = numeric === 1 ? asNumber! : member.userId;
    // The indexes are updated after the outcome is returned, not before: outcomes come back in the order Redis ran their
    // scripts (`list` says why); awaited here, the next join's `channel_occupied` went out before this `channel_vacated`.
    // Their first commands are sent now, in this order, on the connection the later ones go on (the app's index is then
    // checked against the count: `reconcileIndex`). A failure leaves an entry that names nothing held any more, which the
    // reaper skips and GET /channels drops.
    if (this.unhold(pair)) void this.unlistNode(pair);
    if (vacated === 1) void this.unindex(appId, channel).catch(() => undefined);
    return { outcome, removed, vacated, joined };
  }

  /** Counts connection `id` of the app if the cluster has fewer than `max` (a second call for the same id counts nothing). */
  async reserveConnection(appId: string, max: number, id: string): Promise<boolean> {
    await this.listApp(appId);
    const keys = [this.keys.appConnections(appId), this.keys.appReservations(appId, this.nodeId)];
    return (await reserve.run(this.client, keys, [this.keys.nodeField(this.nodeId), max, id])) === 1;
  }

  /**
   * Records a user's first / last signed-in connection on this node; the script tells every node on a cluster transition.
   * `restore`: recorded again after Redis lost its data, when the watchers still have the user online (the script says
   * when it tells them all the same).
   */
  async userPresence(appId: string, userId: string, online: boolean, restore = false): Promise<void> {
    if (online) await this.client.sadd(this.keys.nodeApps(this.nodeId), appId);
    const k = this.keys.users(appId);
    const message: UserPresenceMessage = { appId, userId, online };
    await userPresence.run(this.client, [k.count, k.share(this.nodeId), k.listed], [
      userId,
      online ? '1' : '0',
      JSON.stringify(message),
      k.events,
      this.publishCommand,
      restore ? '1' : '',
    ]);
  }

  /**
   * Which of `userIds` are signed in somewhere in the cluster. The app's `listed` key is set first (same slot and
   * connection, so before the read): a user restored after it tells its watchers `online`, this answer may lack it. A
   * failed write does not fail the answer.
   */
  async usersOnline(appId: string, userIds: readonly string[]): Promise<Set<string>> {
    if (userIds.length === 0) return new Set();
    const k = this.keys.users(appId);
    const [, counts] = await Promise.all([this.client.set(k.listed, '1').catch(() => undefined), this.client.hmget(k.count, ...userIds)]);
    return new Set(userIds.filter((_, i) => Number(counts[i] ?? 0) > 0));
  }

  /** Uncounts connection `id` of the app (nothing if it is not counted: the script checks). */
  async releaseConnection(appId: string, id: string): Promise<void> {
    const keys = [this.keys.appConnections(appId), this.keys.appReservations(appId, this.nodeId)];
    await release.run(this.client, keys, [this.keys.nodeField(this.nodeId), id]);
  }

  /**
   * Removes `node`'s share of every channel it held and its counted connections; what changed, per channel, and what it
   * could not remove. `back` is asked along with each app's and each channel's step (sent just before its script, so it
   * costs no round trip) and once more after the last: as soon as it answers true the reap stops where it is and leaves
   * the node's indexes, which still list everything the node may hold (what it recorded meanwhile included). Only a reap
   * that went through deletes them. Without `back` it always goes through (a node removing its own share as it closes).
   *
   * A step that fails (on a Redis Cluster, its keys on a master that is down or does not answer) does not stop the reap:
   * the node's share on the other shards is removed all the same, and what was removed is returned, for the webhooks, as
   * after a reap that went through. Such a reap is not complete: it leaves the node's indexes whole, so a later attempt
   * finds what is left (the steps already done change nothing the second time). A channel step that got no answer (not
   * an error reply) leaves the node's other channels on that master to the later attempt too, unsent: each would wait
   * for the command timeout (1 s), and a dead node with many channels on a down master would hold the reaper that long.
   * A `back` that cannot be asked stops the reap there, incomplete: whether the node beat again cannot be told, and
   * removing what it may have recorded since would go unseen by it. Only the reading of the indexes themselves throws
   * (nothing is removed before it).
   */
  async reap(node: string, back: () => Promise<boolean> = async () => false): Promise<ReapOutcome> {
    const out: ReapOutcome = { channels: [], appsLeft: 0, channelsLeft: 0, complete: false };
    /** A step that failed: its error kept if it is the first. */
    const failed = (err: unknown): void => void (out.error ??= err instanceof Error ? err.message : String(err));
    /** The masters a channel step got no answer from in this attempt. */
    const silent = new Set<string | undefined>();
    const apps = await this.client.smembers(this.keys.nodeApps(node));
    for (const [i, appId] of apps.entries()) {
      const k = this.keys.users(appId);
      const head = `${JSON.stringify({ appId }).slice(0, -1)},"userId":`;
      const [isBack, connections, users] = await Promise.allSettled([
        back(),
        reapConnections.run(this.client, [this.keys.appConnections(appId), this.keys.appReservations(appId, node)], [
          this.keys.nodeField(node),
        ]),
        this.reapUsers(k.count, k.share(node), head, k.events, back),
      ]);
      // Found back between two steps of its users: the rest of them are its own again.
      const backMidway = users.status === 'fulfilled' && users.value;
      for (const step of [connections, users]) if (step.status === 'rejected') failed(step.reason);
      if (connections.status === 'rejected' || users.status === 'rejected' || backMidway) out.appsLeft++;
      if (isBack.status === 'rejected') failed(isBack.reason);
      if (isBack.status === 'rejected' || isBack.value || backMidway) {
        out.appsLeft += apps.length - i - 1;
        // None of its channels was reached.
        out.channelsLeft = await this.client.scard(this.keys.nodeChannels(node)).catch(() => 0);
        return out;
      }
    }
    const pairs = await this.client.smembers(this.keys.nodeChannels(node));
    for (const [i, pair] of pairs.entries()) {
      const [appId, channel] = JSON.parse(pair) as [string, string];
      const master = masterOf(this.client, this.keys.channel(appId, channel).state);
      if (silent.has(master)) {
        out.channelsLeft++;
        continue;
      }
      const [isBack, reaped] = await Promise.allSettled([back(), this.reapChannel(node, appId, channel)]);
      if (reaped.status === 'fulfilled') {
        if (reaped.value !== undefined) out.channels.push(reaped.value);
      } else {
        failed(reaped.reason);
        out.channelsLeft++;
        // An error reply is that channel's own; anything else (timed out, connection closed) is its master's.
        if ((reaped.reason as Error | undefined)?.name !== 'ReplyError') silent.add(master);
      }
      if (isBack.status === 'rejected') failed(isBack.reason);
      if (isBack.status === 'rejected' || isBack.value) {
        out.channelsLeft += pairs.length - i - 1;
        return out;
      }
    }
    if (out.appsLeft > 0 || out.channelsLeft > 0) return out;
    // The node's app index goes with its channel index, last: a reap that stopped must leave both.
    try {
      if (await back()) return out;
      await Promise.all([this.client.del(this.keys.nodeApps(node)), this.client.del(this.keys.nodeChannels(node))]);
    } catch (err) {
      // Everything was removed, and is returned to be announced; the indexes stay for a later attempt (which finds
      // nothing more to remove). Thrown, what was removed would never be announced.
      failed(err);
      return out;
    }
    out.complete = true;
    return out;
  }

  /**
   * The `[appId, channel]` JSON pairs of every channel Redis has subscriptions of this node on: those in its channel
   * index, and those whose subscriptions hash a `SCAN` of every server (each master) finds. A server restarted from a
   * snapshot holds the subscriptions as they were then, while the index, on another shard of a Redis Cluster, went on
   * without the channels the node left since. Rejects if a server cannot be read.
   */
  async subscribedPairs(): Promise<string[]> {
    const pairs = new Set(await this.client.smembers(this.keys.nodeChannels(this.nodeId)));
    const servers: (Redis | Cluster)[] = this.client.isCluster ? (this.client as Cluster).nodes('master') : [this.client];
    const pattern = this.keys.subscriptionsPattern(this.nodeId);
    for (const server of servers) {
      let cursor = '0';
      do {
        const [next, found] = await (server as Redis).scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        for (const key of found) {
          const pair = this.keys.pairOfSubscriptions(key, this.nodeId);
          if (pair !== undefined) pairs.add(pair);
        }
      } while (cursor !== '0');
    }
    return [...pairs];
  }

  /** The apps in this node's app index: every app it may have counted connections or signed-in users of. */
  nodeAppIds(): Promise<string[]> {
    return this.client.smembers(this.keys.nodeApps(this.nodeId));
  }

  /** The ids of the app's connections this node is counted for (its reservations). */
  reservationIds(appId: string): Promise<string[]> {
    return this.client.hkeys(this.keys.appReservations(appId, this.nodeId));
  }

  /** The users of the app signed in on this node, as Redis has them. */
  signedInUsers(appId: string): Promise<string[]> {
    return this.client.smembers(this.keys.users(appId).share(this.nodeId));
  }

  /**
   * Removes this node's subscriptions of the channel of `pair` but those in `kept` (socket id → user id, '' on a channel
   * without members): those it holds or is recording, as the caller knows them when it calls, synchronously before the
   * script is sent (PRUNE_LUA). Sent in order (EVAL: a server that restarted knows no script, and a NOSCRIPT retry would
   * run behind the changes sent after it), so every change sent before it has run and every one sent after runs after
   * it. What changed, for the webhooks (undefined: nothing announced), and how many subscriptions it removed.
   */
  async pruneChannel(pair: string, kept: ReadonlyMap<string, string>): Promise<{ changed: ReapedChannel | undefined; removed: number }> {
    const [appId, channel] = JSON.parse(pair) as [string, string];
    const k = this.keys.channel(appId, channel);
    const args: (string | number)[] = [
      this.keys.nodeField(this.nodeId),
      envelopeHead(appId, channel, 'removed'),
      this.countHead(appId, channel),
      k.events,
      this.publishCommand,
      channel.startsWith('presence-') ? '1' : '0',
    ];
    for (const [socketId, userId] of kept) args.push(socketId, userId);
    const [vacated, removedUsers, countWait = 0, published = -1, removed = 0] = (await prune.inOrder(
      this.client,
      this.scriptKeys(appId, channel, this.nodeId),
      args,
    )) as [number, string[], number?, number?, number?];
    this.trailingCount(appId, channel, countWait);
    if (vacated === 1) await this.unindex(appId, channel).catch(() => undefined);
    // Nothing of this node's left there: its index forgets the channel (unless a join came meanwhile).
    if (kept.size === 0 && !this.held.has(pair)) await this.unlistNode(pair);
    const users = removedUsers.map(signedId);
    const count = published >= 0 ? published : undefined;
    const changed = vacated === 1 || users.length > 0 || count !== undefined ? { appId, channel, removedUsers: users, vacated: vacated === 1, count } : undefined;
    return { changed, removed };
  }

  /** One channel's step of `reap`: its script, then the app's index if the channel was vacated; what changed, if anything. */
  private async reapChannel(node: string, appId: string, channel: string): Promise<ReapedChannel | undefined> {
    const k = this.keys.channel(appId, channel);
    const receipt = this.keys.reapReceipt(appId, channel, node);
    const [vacated, removedUsers, countWait = 0, published = -1] = (await reap.run(this.client, [...this.scriptKeys(appId, channel, node), receipt], [
      this.keys.nodeField(node),
      envelopeHead(appId, channel, 'removed'),
      this.countHead(appId, channel),
      k.events,
      this.publishCommand,
      channel.startsWith('presence-') ? '1' : '0',
      REAP_RECEIPT_TTL_MS,
    ])) as [number, string[], number?, number?];
    // Answered: a later attempt (this reap stopped at another step) must find nothing to announce again. Not awaited: it
    // goes on the same connection before any later attempt's script. Left behind by a failure, it expires.
    void this.client.del(receipt).catch(() => undefined);
    this.trailingCount(appId, channel, countWait);
    // The app's index is on another shard: failing there leaves a vacated channel listed, which GET /channels skips (no
    // subscription), and must not count the channel as left (its share is gone, and a later attempt would not vacate it).
    if (vacated === 1) await this.unindex(appId, channel).catch(() => undefined);
    const removed = removedUsers.map(signedId);
    const count = published >= 0 ? published : undefined;
    if (vacated !== 1 && removed.length === 0 && count === undefined) return undefined;
    return { appId, channel, removedUsers: removed, vacated: vacated === 1, count };
  }

  /** The channel's counts; its user count only when `users` (one command fewer; 0 otherwise). */
  async counts(appId: string, channel: string, users = true): Promise<ChannelCounts> {
    const k = this.keys.channel(appId, channel);
    const [total, userCount] = await Promise.all([this.client.hget(k.state, 'total'), users ? this.client.hlen(k.users) : 0]);
    return { subscriptionCount: Math.max(0, Number(total ?? 0)), userCount };
  }

  /**
   * The app's occupied channels that `query` takes, with their counts (adapter.ts, `ChannelQuery`). A listed channel
   * without subscribers (its index entry outlived it: a failed command, a node gone between its vacate and its index) is
   * left out, and dropped from the index once its count is read again (`reconcileIndex`), in the background.
   *
   * The counts are read CHANNELS_READ_AT_ONCE channels at a time: all at once, 22 000 channels sent 44 000 commands
   * together, the last ones waited past the command timeout behind the first (the request failed 503) and the replies
   * held the node's thread ~1 s, its heartbeats with it — ten such requests at once had another node reap it.
   */
  async channels(appId: string, query: ChannelQuery = {}): Promise<Map<string, ChannelCounts>> {
    const all = await this.listed(appId, query.prefix ?? '');
    // Users' own channels a node of an earlier version listed: dropped, never read.
    const listed = all.filter((name) => !isUserChannel(name));
    if (listed.length < all.length) this.dropUsersListed(appId, all.filter(isUserChannel));
    const names = query.include === undefined ? listed : listed.filter(query.include);
    const users = query.userCount ?? true;
    const out = new Map<string, ChannelCounts>();
    for (let start = 0; start < names.length; start += CHANNELS_READ_AT_ONCE) {
      const chunk = names.slice(start, start + CHANNELS_READ_AT_ONCE);
      const counted = await Promise.all(chunk.map(async (name) => [name, await this.counts(appId, name, users)] as const));
      for (const [name, counts] of counted) {
        if (counts.subscriptionCount > 0) out.set(name, counts);
        else this.dropListed(appId, name);
      }
    }
    return out;
  }

  /**
   * The app's listed channels starting with `prefix`: the whole index when it is empty, else the names Redis matches
   * (`SSCAN … MATCH`, LISTED_SCAN_COUNT entries a step): 22 000 names sent for a prefix matching one took ~40 ms of the
   * node's thread to read.
   */
  private listed(appId: string, prefix: string): Promise<string[]> {
    const key = this.keys.appChannels(appId);
    return prefix === '' ? this.client.smembers(key) : this.matching(key, prefix);
  }

  /** The names of the index `key` starting with `prefix`, matched by Redis (`listed`). */
  private async matching(key: string, prefix: string): Promise<string[]> {
    const pattern = `${globEscape(prefix)}*`;
    const names = new Set<string>();
    let cursor = '0';
    do {
      const [next, found] = await this.client.sscan(key, cursor, 'MATCH', pattern, 'COUNT', LISTED_SCAN_COUNT);
      for (const name of found) names.add(name);
      cursor = next;
    } while (cursor !== '0');
    return [...names];
  }

  /** Removes users' own channels from the app's index, USERS_UNLISTED_AT_ONCE names a command, in the background. */
  private dropUsersListed(appId: string, names: string[]): void {
    const key = this.keys.appChannels(appId);
    void (async () => {
      for (let start = 0; start < names.length; start += USERS_UNLISTED_AT_ONCE) {
        await this.client.srem(key, ...names.slice(start, start + USERS_UNLISTED_AT_ONCE));
      }
    })().catch(() => undefined);
  }

  /**
   * Takes a dead node's signed-in users of an app out, REAP_USERS_AT_ONCE a script (REAP_USERS_LUA), publishing `offline`
   * for those signed in nowhere else. What a step took is gone from the node's set: a reap tried again goes on from there.
   * Between two steps it asks whether the node is back (`back`): one back records its users again, and a later step would
   * take them out, `offline` for users still signed in (the one script this replaces could not interleave so). Returns true
   * when it stopped for that.
   */
  private async reapUsers(counts: string, share: string, head: string, watch: string, back: () => Promise<boolean>): Promise<boolean> {
    for (;;) {
      const [, left] = (await reapUsers.run(this.client, [counts, share], [head, watch, this.publishCommand, REAP_USERS_AT_ONCE])) as [number, number];
      if (left === 0) return false;
      if (await back()) return true;
    }
  }

  /** Unlists an empty channel GET /channels met (once at a time per channel, however many GETs meet it meanwhile). */
  private dropListed(appId: string, channel: string): void {
    const key = `${appId}\u0000${channel}`;
    if (this.dropping.has(key)) return;
    this.dropping.add(key);
    void this.unindex(appId, channel)
      .catch(() => undefined)
      .finally(() => this.dropping.delete(key));
  }

  /**
   * Whether the channel is still empty (`userId` undefined) or the user still no member of it; if so, marks it sent for
   * `markMs` (STILL_GONE_LUA). What a node asks before it sends a vacate it held.
   */
  async stillGone(appId: string, channel: string, userId: string | undefined, markMs: number): Promise<boolean> {
    const k = this.keys.channel(appId, channel);
    const keys = [k.state, k.users, this.keys.goneSent(appId, channel, userId)];
    return (await stillGone.run(this.client, keys, [userId ?? '', Math.max(1, Math.round(markMs))])) === 1;
  }

  /** Removes the mark of a vacate sent (`stillGone`): an occupy of the channel (a member_added of the user) was sent since. */
  async clearGoneSent(appId: string, channel: string, userId: string | undefined): Promise<void> {
    await this.client.del(this.keys.goneSent(appId, channel, userId));
  }

  /** Whether a node sent a vacate of the channel (or a removal of the user) within its mark's time (`stillGone`). */
  async goneSent(appId: string, channel: string, userId: string | undefined): Promise<boolean> {
    return (await this.client.exists(this.keys.goneSent(appId, channel, userId))) === 1;
  }

  async hasMember(appId: string, channel: string, userId: string): Promise<boolean> {
    return (await this.client.hexists(this.keys.channel(appId, channel).users, userId)) === 1;
  }

  async members(appId: string, channel: string): Promise<Map<string, unknown>> {
    const all = await this.client.hgetall(this.keys.channel(appId, channel).info);
    const out = new Map<string, unknown>();
    for (const [id, info] of Object.entries(all)) out.set(id, parse(info));
    return out;
  }

  /** The members if the channel changed past `seq` (MEMBERS_SINCE_LUA: marked given, as a join's list). */
  async membersSince(appId: string, channel: string, seq: number): Promise<MemberSnapshot | 'unchanged' | 'unrecorded'> {
    const keys = this.keys.channel(appId, channel);
    const [now, flat] = (await membersSince.run(this.client, [keys.state, keys.info], [
      String(seq),
      this.keys.nodeField(this.nodeId),
    ])) as [string, string[]];
    if (now === '-1') return 'unrecorded';
    if (Number(now) <= seq) return 'unchanged';
    return { members: flatMembers(flat), seq: Number(now) };
  }

  /**
   * Lists the app in this node's `nodeApps` (what a reaper walks) once per connection to Redis. `relist` forgets what was
   * listed: after a reconnection the node may have been reaped meanwhile (cut off longer than its TTL), set and all.
   */
  private async listApp(appId: string): Promise<void> {
    if (this.listedApps.has(appId)) return;
    await this.client.sadd(this.keys.nodeApps(this.nodeId), appId);
    this.listedApps.add(appId);
  }

  relist(): void {
    this.listedApps.clear();
  }

  /** Releases one local hold of `pair`; true when it was the last. */
  private unhold(pair: string): boolean {
    const n = (this.held.get(pair) ?? 1) - 1;
    if (n > 0) this.held.set(pair, n);
    else this.held.delete(pair);
    return n <= 0;
  }

  /**
   * Adds a channel a join occupied to its app's listing, without holding up the join's outcome: outcomes must come back
   * in the order Redis ran their scripts, since the node's webhooks follow them (awaited here, the next join's count went
   * out before this join's `channel_occupied`). Its SADD is sent at once, ahead of this node's later commands on the
   * listing (a vacate's SREM); what runs later is put right by the check after each write (`reconcileIndex`). Tried twice;
   * a listing that failed both leaves the channel out of GET /channels until it is vacated and occupied again (before,
   * the join itself failed after its script had recorded it).
   */
  private list(appId: string, channel: string): void {
    // A user's own channel is no channel of the app's (GET /channels never answers it): listed, every signed-in user was
    // a name each GET /channels read and left out, and each sign-in and sign-out a write and a read of the app's one key.
    if (isUserChannel(channel)) return;
    const add = (): Promise<void> => this.reconcileIndex(appId, channel, true);
    add().catch(add).catch(() => undefined);
  }

  /** The node holds no subscription to the channel of `pair` any more: its index forgets it, unless a join came meanwhile. */
  private async unlistNode(pair: string): Promise<void> {
    try {
      await this.client.srem(this.keys.nodeChannels(this.nodeId), pair);
      // A join on this node that started meanwhile re-added the pair before its script: put it back.
      if (this.held.has(pair)) await this.client.sadd(this.keys.nodeChannels(this.nodeId), pair);
    } catch {
      // Left listed: a reaper finds nothing of this node's there.
    }
  }

  /** A vacated channel leaves the app's index, unless another node occupied it meanwhile. */
  private unindex(appId: string, channel: string): Promise<void> {
    // Never listed by this version; a node of an earlier one listed it (a rolling upgrade): removed, nothing to check.
    if (isUserChannel(channel)) return this.client.srem(this.keys.appChannels(appId), channel).then(() => undefined);
    return this.reconcileIndex(appId, channel, false);
  }

  /**
   * Makes the app's index of occupied channels agree with the channel's count, from `occupied` (what this node's script
   * answered): listed while the channel has subscribers, not once it has none. The index and the count are different keys
   * (on a Redis Cluster, on different shards), so nodes occupying and vacating a channel at once race: a node that read
   * the count before another node's vacate and listed the channel after it left an empty channel listed for good (a probe:
   * a few in 10 000 subscribe/unsubscribe flaps across two nodes, never removed; GET /channels read each of them on every
   * call). So each write is followed by a reading of the count, and written again while the count no longer agrees: the
   * last write's reading comes after every write. Each round more needs the count to change between two readings; after
   * INDEX_ROUNDS the channel is left listed, the safe side: an empty name listed is dropped by `channels` when it meets
   * it, an occupied channel unlisted would be missing from GET /channels until it is vacated and occupied again.
   */
  private async reconcileIndex(appId: string, channel: string, occupied: boolean): Promise<void> {
    const index = this.keys.appChannels(appId);
    const state = this.keys.channel(appId, channel).state;
    for (let round = 0; round < INDEX_ROUNDS; round++) {
      if (occupied) await this.client.sadd(index, channel);
      else await this.client.srem(index, channel);
      const now = Number((await this.client.hget(state, 'total')) ?? 0) > 0;
      if (now === occupied) return;
      occupied = now;
    }
    await this.client.sadd(index, channel);
  }
}

/**
 * The master serving `key`'s slot as the Cluster client last learned it (undefined without a slot map); on a single Redis
 * '' (its one server).
 */
export function masterOf(client: Redis | Cluster, key: string): string | undefined {
  return client.isCluster ? (client as Cluster).slots[calculateSlot(key)]?.[0] : '';
}

/** The stored user info: its JSON, after a '#' when the user id was signed as a number (the reap script reads the mark). */
function storedInfo(member: MemberRef): string {
  const json = JSON.stringify(member.userInfo ?? null);
  return typeof member.signedUserId === 'number' ? `#${json}` : json;
}

/** A user id the reap script returned, as the backend signed it. */
function signedId(id: string): string | number {
  return id.startsWith('#') ? Number(id.slice(1)) : id;
}

/** Stored user info (storedInfo) back to its value. */
function parse(stored: string): unknown {
  const json = stored.startsWith('#') ? stored.slice(1) : stored;
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return null;
  }
}

/** A script's flat user id / stored info list as a member list. */
function flatMembers(flat: readonly string[]): Map<string, unknown> {
  const members = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) members.set(flat[i]!, parse(flat[i + 1]!));
  return members;
}
