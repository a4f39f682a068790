/**
 * The cluster engine seam.
 *
 * Contract:
 * - `publish(envelope)` delivers the envelope to the handler registered with `onEnvelope` on every node (this one
 *   included) that holds a subscription to its channel recorded with `join` (and no other: interest routing), at most once
 *   per node; envelopes published by one node on one channel arrive in publish order. Once `join` resolved, every later
 *   publication on the channel reaches this node.
 * - Queries (`channels`, `channel`, `members`) answer for the whole cluster; the local adapter answers for this node. A
 *   query the engine could not answer (down, or the command failed) rejects with `EngineUnavailableError`, never with an
 *   empty answer in its place: "nobody there" would be a wrong answer, and the HTTP API answers 503 instead.
 * - Membership is decided cluster-wide: `join` / `leave` record one subscription of this node and say whether it was the
 *   channel's first / last in the cluster and the user's first / last presence connection in the cluster. The engine itself
 *   publishes `pusher_internal:member_added` / `member_removed` (with a `seq`, in the order of the changes) and
 *   `pusher_internal:subscription_count` (the cluster's count; only for apps that enabled it, as in Pusher), so every node
 *   sees them once and in order.
 * - Every subscription count the engine publishes is reported once, on the node that published it (its webhook goes out
 *   from there): in the outcome of the change that published it (`join`, `leave`, a reap's `onReaped`), or, for a count
 *   no change carries — the trailing count of a big channel, published when the throttle's interval ends — to
 *   `onCountPublished`. A change recorded again after this node's share was lost reports nothing, as it reports no
 *   occupancy or member change either.
 * - A node that disappears without leaving (crash) has its share removed by the engine within a bounded time; what that
 *   changed is reported to `onReaped` of exactly one surviving node (the local adapter has no other node and never calls it).
 * - `terminateUser` closes that user's connections on every node.
 * - A publish while the engine is down is counted and dropped (never buffered without bound); `status().up` says so.
 * - `shardDown(appId, channel)` (optional: an engine whose channels live on shards that fail apart, a Redis Cluster): the
 *   shard carrying the channel's publications is down while the rest serves, so `status().up` stays true.
 * - `flush()` resolves once every envelope this node published before the call has reached this node's envelope handler
 *   (the graceful drain waits for it before closing connections, so an accepted publish is written before the 4200 close).
 * - `holdLeaves(ms)` (optional): the graceful drain's leave grace — the leaves of the connections it closes are recorded
 *   after `ms`, or at `settle` / `close`, so clients that reconnect to another node meanwhile cause no leave and rejoin.
 * Every implementation runs the same contract suite (test/adapters/adapter-contract.ts).
 */
import type { Envelope } from './envelope.js';

/**
 * A query the cluster engine could not answer: it is down, or it failed the command while up (Redis out of memory, no
 * answer within the command timeout, a script error). The caller must not read it as an empty answer; the HTTP API answers
 * it with 503 `API_ENGINE_UNAVAILABLE` (http/api-error.ts). The engine's own error, if any, is the `cause`.
 */
export class EngineUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EngineUnavailableError';
  }
}

/** The engine's state for /readyz and the `websocket_adapter_*` gauges. */
export interface AdapterStatus {
  adapter: string;
  /** The engine is reachable. */
  up: boolean;
  /** Membership changes this node keeps because they could not be recorded yet (held while down, or failed and retried). */
  pending: number;
  /**
   * Publishes are refused: the engine is reachable but has not taken what this node already sent to it, over a bound (a
   * stalled Redis). The HTTP API answers 503 meanwhile; `publish` still carries what comes until twice the bound (a
   * request admitted just before it, whole), then drops and counts (`backlog`).
   */
  congested: boolean;
}

export interface ChannelCounts {
  subscriptionCount: number;
  /** Distinct presence users; 0 for other channels. */
  userCount: number;
}

/**
 * Which channels `channels` reads (GET /channels): the names starting with `prefix` (all when absent) that `include`
 * takes (all when absent), with their user counts when `userCount` (the default; 0 otherwise). The names are chosen
 * before anything is read for them: on Redis each read channel costs commands, and a request filtered to one channel read
 * every channel of the app (22 000: 44 000 commands, the node stalled ~1 s). Redis matches the prefix itself.
 */
export interface ChannelQuery {
  prefix?: string;
  include?: (name: string) => boolean;
  userCount?: boolean;
}

/** The last event the backend published on a cache channel (client events are not cached), replayed to new subscribers. */
export interface CachedEvent {
  event: string;
  data: string;
}

/** A presence member as recorded cluster-wide. */
export interface MemberRef {
  userId: string;
  /** `user_id` as the backend signed it (a number stays a number), echoed in member_added / member_removed. */
  signedUserId?: string | number;
  userInfo: unknown;
}

/**
 * What `Adapter.onEventsMissed` tells. `missing`: from now on this node may miss events of the channels `which` names — its
 * subscriber connection closed (every channel), a Redis Cluster shard is down (every channel: the slot map may already
 * have moved), or a presence channel's numbering skipped (that channel; told before the envelope that showed it is delivered).
 * `recovered`: what was missed can be read now — the subscriber back and subscribed again, a shard back 3 s ago (its
 * sharded subscribers reconnect on their own, unseen), at once after a gap, and once this node's share is recorded again.
 * `renumbered`: Redis lost its data, so a channel's `seq` is gone until its next change (a member restored silently
 * makes none: nothing compares with what this node saw before), and what left meanwhile (a member who left while Redis
 * was away, the members of a node that died before it was reaped) was never announced.
 */
export interface MissedEventsListener {
  missing(which: (appId: string, channel: string) => boolean, renumbered?: boolean): void;
  recovered(): void;
}

/** A presence channel's members and the `seq` of the last change among them (`Adapter.membersChangedSince`). */
export interface MemberSnapshot {
  members: Map<string, unknown>;
  seq: number;
}

/** What one subscription changed in the cluster. */
export interface JoinOutcome {
  /** False when the presence channel already holds the maximum of members and this user is not one: nothing changed. */
  admitted: boolean;
  /** The channel's first subscription in the cluster (`channel_occupied`). */
  occupied: boolean;
  /** The user's first connection to this presence channel in the cluster (`member_added`). */
  memberAdded: boolean;
  /** Presence channels: the members right after this join (user id → info); empty for other channels. */
  members: Map<string, unknown>;
  /** Presence sequence number of that snapshot: member events with a `seq` at or below it are already in it. */
  seq: number;
  /**
   * Non-presence channels: the subscription count published to the other subscribers by this join (undefined when the
   * throttle of big channels held it back, or the app does not count subscriptions). The joiner is left out of that
   * publication and is sent it directly.
   */
  count?: number | undefined;
  /**
   * Non-presence channels of an app that counts subscriptions, when the throttle held this join's count back: the count
   * with this join, for the joiner alone (the others hear the count when the interval ends, and only if it moved by
   * then — a joiner that waited for it could wait for good, with pusher-js's `subscriptionCount` still null).
   */
  heldCount?: number | undefined;
}

/** What one unsubscription (or a closed connection's) changed in the cluster. */
export interface LeaveOutcome {
  /** The channel's last subscription in the cluster left (`channel_vacated`). */
  vacated: boolean;
  /** The user's last connection to this presence channel in the cluster left (`member_removed`). */
  memberRemoved: boolean;
  /**
   * With `memberRemoved`: the `user_id` its `member_removed` echoed — as its `member_added` did, signed by the member's
   * first connection (a number or a string), whatever the leaving connection's signature said. Undefined when the engine
   * could not tell (a leave answered from an earlier attempt's receipt): the leaving connection's is used.
   */
  removedUserId?: string | number | undefined;
  /**
   * Non-presence channels: the subscription count this leave published (undefined when the throttle of big channels held
   * it back, the app does not count subscriptions, or the channel was vacated: an empty channel gets no count).
   */
  count?: number | undefined;
}

/**
 * What giving up a join changed that no webhook has told (`Adapter.abandonJoin`): a change of the late join that stands
 * (`occupied`, `memberAdded`), or one its take-back made beyond undoing it (`memberRemoved`, `vacated`); and the count the
 * take-back published, as `LeaveOutcome.count`.
 */
export interface TakeBackOutcome {
  occupied: boolean;
  memberAdded: boolean;
  memberRemoved: boolean;
  vacated: boolean;
  count?: number | undefined;
  /** With `memberRemoved`: the `user_id` it echoed, as `LeaveOutcome.removedUserId`. */
  removedUserId?: string | number | undefined;
}

/** One channel of a dead node, after its share was removed. */
export interface ReapedChannel {
  appId: string;
  channel: string;
  /** Users present only through the dead node (ids as signed): `member_removed` was published for each. */
  removedUsers: (string | number)[];
  vacated: boolean;
  /** The subscription count the reap published for a non-presence channel it left occupied, as `LeaveOutcome.count`. */
  count?: number | undefined;
}

export interface Adapter {
  readonly name: string;
  onEnvelope(handler: (envelope: Envelope) => void): void;
  /** Hands on a callback for `terminateUser` requests arriving from any node. */
  onTerminateUser(handler: (appId: string, userId: string) => void): void;
  /**
   * Sends an envelope to every node's handler. With `cached`, the channel's cached event (a cache channel) is stored in the
   * same step, so a new subscriber tells it from the live events (`cacheReplay`). Returns why it dropped the envelope
   * unsent (counted in `websocket_adapter_dropped_total` already), for the publish span; undefined once it is sent.
   */
  publish(envelope: Envelope, cached?: CachedEvent): 'down' | 'backlog' | undefined;
  /**
   * Records one subscription of connection `socketId` (with its presence membership); `maxMembers` 0 means no cap. A join
   * that rejects may still have been recorded (a cluster engine's command timed out, and ran late): the caller either
   * joins again — the engine then answers what the earlier attempt changed, so its webhooks go out once — or gives it up
   * with `abandonJoin`.
   */
  join(appId: string, channel: string, socketId: string, member: MemberRef | null, maxMembers: number): Promise<JoinOutcome>;
  /**
   * Optional (an engine whose joins can fail): the caller gives up a join that rejected and will not try it again. What
   * an attempt of it recorded late is taken out; resolves (once that is recorded) with what the caller's webhooks must
   * tell of it — nothing of the late join's own changes, which no webhook told, but what taking it out changed beyond
   * them, or what of them it left standing. All false if the last attempt was answered. Never rejects.
   */
  abandonJoin?(appId: string, channel: string, socketId: string, member: MemberRef | null): Promise<TakeBackOutcome>;
  /** Removes the subscription of connection `socketId` recorded by `join` on this node. */
  leave(appId: string, channel: string, socketId: string, member: MemberRef | null): Promise<LeaveOutcome>;
  /**
   * Counts connection `id` of the app against `max` across the cluster (APP_MAX_CONNECTIONS); false when the cluster is
   * at the quota. Every true is matched by one `releaseConnection` of the same id when the connection closes.
   */
  reserveConnection(appId: string, max: number, id: string): Promise<boolean>;
  releaseConnection(appId: string, id: string): void;
  /**
   * A signed-in user's first (`online`) or last connection on this node. The engine decides whether it is the user's
   * first / last in the cluster and then tells the `onUserPresence` handler of every node (watchlist events).
   */
  /** Resolves once the change is recorded for the cluster, or once a first attempt failed (it is then retried in the background). */
  userPresence(appId: string, userId: string, online: boolean): Promise<void>;
  onUserPresence(handler: (appId: string, userId: string, online: boolean) => void): void;
  /**
   * Which of `userIds` have a signed-in connection somewhere in the cluster. Never rejects: when the engine could not
   * answer, none (the watchlist's first frame then says every user is offline; their changes still follow).
   */
  usersOnline(appId: string, userIds: readonly string[]): Promise<Set<string>>;
  /** Hands on a callback for the channels changed by the removal of a dead node's share (webhooks). */
  onReaped(handler: (channels: ReapedChannel[]) => void): void;
  /**
   * Hands on a callback for the subscription counts this node published that no change's outcome carries: the trailing
   * count of a big channel, once the throttle's interval ends (webhooks).
   */
  onCountPublished(handler: (appId: string, channel: string, count: number) => void): void;
  /**
   * The app's occupied channels with their counts. Rejects with `EngineUnavailableError` when the engine could not answer
   * (so do `channel` and `members`); the local adapter always answers.
   */
  channels(appId: string, query?: ChannelQuery): Promise<Map<string, ChannelCounts>>;
  /** One channel's counts (zero for a channel nobody holds); rejects with `EngineUnavailableError` as `channels` does. */
  channel(appId: string, channel: string): Promise<ChannelCounts>;
  /** Presence members: user id → user info. Rejects with `EngineUnavailableError` as `channels` does. */
  members(appId: string, channel: string): Promise<Map<string, unknown>>;
  /**
   * Optional (an engine whose pub/sub can lose what it carries: Redis): the presence members, if the channel's members
   * changed past `seq`, with the `seq` of the last change among them; `unchanged` when they did not; `unrecorded` when
   * this node's own subscriptions of the channel are not recorded there (the engine lost them, or reaped this node: they
   * are being recorded again, and the list would lack them). The list is one given to subscribers, as a join's (the
   * engine may announce members it restores after it). Rejects with `EngineUnavailableError` as `members` does.
   */
  membersChangedSince?(appId: string, channel: string, seq: number): Promise<MemberSnapshot | 'unchanged' | 'unrecorded'>;
  /**
   * Optional, with `membersChangedSince`: hands on the listener of what this node may miss (realtime/member-resync.ts).
   */
  onEventsMissed?(listener: MissedEventsListener): void;
  /**
   * Whether `userId` is a presence member of the channel (cluster-wide), without reading the others: what a held
   * `member_removed` webhook asks when its delay ends. Rejects with `EngineUnavailableError` as `channels` does; timed as
   * a `members` request.
   */
  hasMember(appId: string, channel: string, userId: string): Promise<boolean>;
  /**
   * Optional (an engine of many nodes): what a held `channel_vacated` (`userId` undefined) or `member_removed` asks when its
   * delay ends — whether the channel is still empty, or the user still gone, cluster-wide — and, when so, a mark for
   * `markMs` that it was sent (`vacateSent`), in one step. Rejects as `channels` does.
   */
  stillGone?(appId: string, channel: string, userId: string | undefined, markMs: number): Promise<boolean>;
  /**
   * Optional, with `stillGone`: whether a node sent a vacate of the channel (or a removal of the user) within its mark's
   * time. What a node whose own vacate was held, and cancelled by its own `channel_occupied` / `member_added`, asks before
   * it drops that one too: if another node's vacate went out meanwhile, the receiver must hear it occupied again.
   */
  vacateSent?(appId: string, channel: string, userId: string | undefined): Promise<boolean>;
  /**
   * Optional, with `stillGone`: a `channel_occupied` (or `member_added` of the user) was sent; the mark of a vacate sent
   * before it goes, since that vacate is no longer the receiver's last word. Never rejects (a mark left makes a later
   * cancelled occupy go out twice at worst).
   */
  occupySent?(appId: string, channel: string, userId: string | undefined): void;
  /**
   * The channel's cached event, or undefined. Never rejects: a read the engine could not answer is a miss (the subscriber
   * gets `pusher:cache_miss`), as an expired or evicted event is.
   */
  cacheGet(appId: string, channel: string): Promise<CachedEvent | undefined>;
  /**
   * The cached event for a new subscriber, read in order with the channel's events: it resolves once every event published
   * before the read has reached this node's envelope handler, and none published after it is the one answered (each event is
   * stored as it is published: `publish`). So a subscriber whose events are held from before the read was sent has the
   * cached event among them whenever it holds any event (realtime/membership.ts `replayCached`). Never rejects (a miss), as `cacheGet`.
   */
  cacheReplay(appId: string, channel: string): Promise<CachedEvent | undefined>;
  /**
   * Stores the channel's cached event without publishing it (`publish` stores the events it carries; Beacon itself only
   * publishes): for tests, and bench/hostile/cache-heap.ts, which fills the cache of older checkouts too.
   */
  cacheSet(appId: string, channel: string, event: CachedEvent): void;
  /**
   * Resolves once the engine took the request (every node closes the user's connections as it hears it); rejects with
   * EngineUnavailableError when it could not (the API answers 503 and the backend retries: terminating twice is harmless).
   */
  terminateUser(appId: string, userId: string): Promise<void>;
  /**
   * Resolves once the joins, leaves and releases in flight are recorded (bounded): the drain waits on it before webhooks
   * close, once every connection is gone. A cluster engine also publishes then the counts the throttle held back for this
   * node's changes (reported to `onCountPublished`), which no other node would publish, so their webhooks go out too.
   */
  settle(): Promise<void>;
  /**
   * Optional (a cluster engine's): the drain's last step with the engine before webhooks close, once every connection is
   * gone and `settle` resolved. What the engine still records for this node — a leave that failed and waits for its retry,
   * a change recorded after its caller gave up on it — is recorded or removed now, the rest as a dead node's share is, and
   * what that removed is reported to `onReaped`, so its webhooks go out before the sender closes. `close` does it again for
   * whatever is left then (reported too, though a closed sender counts it failed). Bounded.
   */
  reapOwn?(): Promise<void>;
  /**
   * Optional (a cluster engine's): the drain is about to close every connection with 4200, and their clients reconnect to
   * other nodes at once. The leaves that follow (subscriptions, presence members, signed-in users) are recorded only
   * after `ms` — the leave grace — so a client back on another node within it changes nothing the cluster sees: no
   * `member_removed` / `member_added`, no `channel_vacated` / `channel_occupied`, no watchlist `offline` / `online`.
   * `settle` waits for the grace to end (at once when nothing is held) and records them; `close` records them too. An
   * engine with no other node serving needs no grace (nowhere to reconnect) and records them at once. The local adapter
   * has no other node and does not implement it.
   */
  holdLeaves?(ms: number): void;
  /**
   * The graceful drain has begun (its first step, before any wait): for up to `ms` this node takes no clients, so other
   * nodes' drains do not count it as a place for theirs to reconnect to (`holdLeaves`). Optional, as `holdLeaves`.
   */
  markDraining?(ms: number): void;
  status(): AdapterStatus;
  /**
   * Optional (a sharded engine's): whether the channel's publications go to a part of the engine that is down while the
   * rest serves — a Redis Cluster master whose connection closed. The HTTP API refuses a publish to it with 503, as while
   * the whole engine is down, rather than accept what `publish` could only lose. Asked for every channel of every API
   * publish: a lookup, no I/O. The local adapter has no shards and does not implement it.
   */
  shardDown?(appId: string, channel: string): boolean;
  /** Resolves once every envelope published by this node so far was handed to this node's envelope handler. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
