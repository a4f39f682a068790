/**
 * The Redis cluster engine (`ADAPTER=redis`): every node of a cluster connects to one Redis (or one Redis Cluster) with
 * a command connection and a subscriber connection.
 *
 * State: what the cluster holds per channel (subscriptions per node, presence users and each node's share of them) is
 * kept in Redis and changed by atomic Lua scripts (redis-membership.ts, redis-scripts.ts) that also publish the member and
 * count events, so `member_added` / `member_removed` / `channel_occupied` / `channel_vacated` happen once per cluster
 * transition, in order. Queries read the same keys.
 *
 * Publications: one pub/sub channel per Pusher channel (`{prefix}:{appId:channel}:ev`) carries the Envelope as JSON,
 * trace context inside. A node subscribes only to the channels it has subscribers for (redis-interest.ts), so cross-node
 * traffic is proportional to what each node serves; every node, the publishing one included, delivers from its
 * subscriber connection, so a publication follows one path wherever it started.
 *
 * Liveness and reaping: each node refreshes its key `{prefix}:node:{id}` (TTL nodeTtlMs) every third of the TTL and is
 * listed in `{prefix}:nodes`. On the same tick every node looks for listed nodes whose key expired; the one that takes
 * the node's reap lock removes its share of every channel (member_removed for users present nowhere else, vacated
 * channels) and unlists it: a crashed node is cleaned up within nodeTtlMs + nodeTtlMs / 3 + the scripts' time of the
 * later of the crash and the moment a survivor's own heartbeats became continuous (a node reaps only after beating without
 * a gap for a TTL, so a Redis that refused every heartbeat makes no live node look dead: redis-reaper.ts). A node that
 * finds its own key gone when it beats (Redis restarted empty, or it was reaped) records everything it holds again
 * (`rerecord`), from what it keeps of its own joins, reservations and signed-in users: after a reap with `member_added`
 * and watchlist `online` (the reaper announced the removals), after Redis lost its data without (nobody did). After
 * Redis went back to an older state (a snapshot, a replica: redis-reaper.ts) it also prunes what Redis has for it that it
 * no longer holds (`pruneShare`).
 * `reap_stopped` is logged for a reap that found its node back.
 *
 * `flush()` sends markers after the envelopes and waits for them to come back (redis-flush.ts: one on the control channel
 * for one Redis, one per shard on a Redis Cluster), so every envelope this node published before has reached its
 * envelope handler by then.
 *
 * Losses while Redis is up: what a node's subscriber misses (closed by Redis, reconnecting) is counted on that node as
 * `gap` (envelope-gaps.ts); a publish command that fails is `error`, one that times out `timeout` (it may still run).
 * A query Redis fails while up (an error such as `OOM`, no answer in time) rejects (`EngineUnavailableError`: the HTTP API
 * answers 503), logged as `adapter_request_failed`, never answered empty.
 *
 * Congestion: a stalled Redis takes nothing this node writes, and the socket's buffer would grow without bound. Past
 * PUBLISH_BACKLOG_MAX_BYTES not taken, `status().congested` refuses the API's publishes, and past twice that `publish`
 * drops. `adapter_congested` and `adapter_congestion_ended` are logged once per episode, noticed where the backlog is
 * read (`status`, `publish`) and on the heartbeat's interval, so an episode nobody reads about still ends.
 * A Redis (a Cluster master) that stops answering is seen sooner, by a publish timing out: marked stalled, its channels'
 * publishes are refused by the API like a down shard's until it answers again (redis-stalls.ts).
 *
 * A shard down (Redis Cluster: one master's connection closed, the others serving) is no engine down: `status().up` stays
 * true, and `shardDown` tells the HTTP API which channels it must refuse publishes to (503) rather than accept and lose.
 * What `publish` gets for those channels anyway (client events) is dropped unsent, as while Redis is down (`down`).
 * `adapter_shard_down` and `adapter_shard_up` are logged once per transition of each shard (redis-link.ts).
 *
 * Failure: no offline queue, so while Redis is down nothing is buffered; `publish` drops (counted in
 * `websocket_adapter_dropped_total{reason="down"}`, and the count is logged with the next `adapter_up`), `join` fails (the subscription is refused with 503), a `leave` is kept and recorded when Redis is back
 * (so no share is left behind), queries reject (`EngineUnavailableError`), the cache misses, and `status().up` is false so
 * `/readyz` answers 503. `adapter_down` and `adapter_up` are logged once per transition.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../telemetry/logger.js';
import { channelKind } from '../protocol/channel-name.js';
import { logEvent, type LogLine } from '../telemetry/log-events.js';
import type { AdapterOp, Metrics } from '../telemetry/metrics.js';
import { EngineUnavailableError, type Adapter, type CachedEvent, type LeaveOutcome, type MemberRef, type MissedEventsListener, type ReapedChannel, type TakeBackOutcome } from './adapter.js';
import { decodeCachedEvent, encodeCachedEvent } from './cache-codec.js';
import type { Envelope } from './envelope.js';
import { decodeStamped, encodeEnvelope } from './envelope-codec.js';
import { GapCounter, GENERATION_MS, Numbering } from './envelope-gaps.js';
import { FlushMarkers } from './redis-flush.js';
import { Interest } from './redis-interest.js';
import { RedisKeys } from './redis-keys.js';
import { evictingServers } from './redis-eviction.js';
import { createRedisLink, type RedisTarget } from './redis-link.js';
import { RedisMembership, type ReapOutcome, type UserPresenceMessage } from './redis-membership.js';
import { createReaper } from './redis-reaper.js';
import { CACHE_READ_LUA, PUBLISH_CACHED_LUA, Script } from './redis-scripts.js';
import { isTimeout, ShardStalls } from './redis-stalls.js';

const publishCached = new Script(PUBLISH_CACHED_LUA);
const cacheRead = new Script(CACHE_READ_LUA);

/** Reconnection back-off: 100 ms more per attempt, at most one second, forever. */
const RETRY_STEP_MS = 100;
const RETRY_MAX_MS = 1000;
/** Pause before subscribing again after a failed resubscription. */
const RESUBSCRIBE_RETRY_MS = 250;
/**
 * After a Redis Cluster shard is back, the wait before this node re-reads its presence channels: longer than ioredis'
 * reconnection back-off of the sharded subscribers (~2.5 s), which reconnect on their own, unseen.
 */
const SHARD_REREAD_DELAY_MS = 3000;
/** A subscriber whose every subscription failed for this long is replaced by a new connection. */
const RENEW_SUBSCRIBER_AFTER_MS = 3000;
/** A command that got no answer in this time fails (a stalled Redis must not stall publishes or queries). */
const COMMAND_TIMEOUT_MS = 1000;
/**
 * Bytes this node may have written to Redis and not yet had taken (a stalled Redis reads nothing: ioredis keeps writing
 * to the socket, whose buffer grows without bound). Over it, publishes are refused (adapter.ts `congested`).
 */
export const PUBLISH_BACKLOG_MAX_BYTES = 16 * 1024 * 1024;
/** A join given up whose take-back tells nothing: its last attempt was answered, or the take-back was never recorded. */
const NOTHING_TOLD: TakeBackOutcome = Object.freeze({ occupied: false, memberAdded: false, memberRemoved: false, vacated: false });
/** Changes of a share recorded again (`rerecord`) in flight at once. */
const RERECORD_CONCURRENCY = 16;
/** Channels a prune (`pruneShare`) sends at a time. */
const PRUNE_BATCH = 64;
/** While the engine is down, a new reason is said at most once per this period (`adapter_still_down`). */
const STILL_DOWN_LOG_MS = 60_000;
/**
 * Reasons that say only that a connection closed, not why the engine stays down: the first telling one after them is said
 * at once. A reset or a broken pipe is how a killed connection ends (the engine's second connection often reads it after
 * the first said "connection closed"); said as news, it held back what the reconnections met for a minute (a test under
 * load: WRONGPASS after a password change, 1 run in 5).
 */
const GENERIC_DOWN =
  /^(connection closed|Connection is closed\.|read ECONNRESET|write EPIPE|write ECONNRESET|Stream isn't writeable and enableOfflineQueue options is false)$/;
/**
 * Whether a reason says only that a connection closed. Also ioredis's answer to a command sent as its connection closes
 * (no offline queue): a probe's kill -9 of Redis had it logged as a failed publish next to `adapter_down`.
 */
export const generic = (reason: string | undefined): boolean => reason === undefined || GENERIC_DOWN.test(reason);
/** At most one `adapter_request_failed` line per this period. */
const REQUEST_FAILURE_LOG_MS = 10_000;

export interface RedisAdapterOptions {
  metrics: Pick<Metrics, 'adapterMessage' | 'adapterRequest' | 'adapterDropped' | 'cacheEvicted'>;
  logger: Pick<Logger, 'info' | 'warn'>;
  url: string;
  /** Redis Cluster seed nodes; when non-empty, `url` is not used and envelopes go through sharded pub/sub. */
  clusterNodes?: { host: string; port: number }[];
  /** Redis Sentinels, asked for the master `master` names; when non-empty, `url` is not used. */
  sentinels?: { host: string; port: number }[];
  sentinelMaster?: string;
  sentinelUsername?: string | undefined;
  sentinelPassword?: string | undefined;
  /** Credentials and TLS for every connection, every Cluster node's included (a URL may carry its own instead). */
  access?: RedisAccess;
  /** Apps whose watchlist transitions this node hears (one watch channel each). */
  appIds?: readonly string[];
  /** The configured node id; a random suffix makes two processes with the same id distinct in the cluster. */
  nodeId: string;
  cacheTtlMs: number;
  /** Prefix of every key and channel, so several clusters (or tests) can share one Redis. */
  prefix?: string;
  /** A node whose heartbeat is older than this is dead and gets reaped. */
  nodeTtlMs?: number;
  /** Whether an app gets `pusher_internal:subscription_count` (its opt-in setting); omitted: every app does. */
  countsSubscriptions?: (appId: string) => boolean;
  now?: () => number;
  /** At most one `adapter_request_failed` line per this period (default 10 s; tests shorten it). */
  requestFailureLogMs?: number;
  /**
   * How long after a change of this node's connections a run of publish numbers that reached nobody is kept anyway
   * (default a generation, GENERATION_MS; tests shorten it).
   */
  unheardHoldMs?: number;
}

/** How the engine reaches its Redis beyond the address: `REDIS_USERNAME`, `REDIS_PASSWORD`, `REDIS_TLS`. */
export interface RedisAccess {
  username?: string | undefined;
  password?: string | undefined;
  /** TLS with Node's trusted CAs (`NODE_EXTRA_CA_CERTS` adds a private one), the server's name checked. */
  tls?: boolean;
}

/** The Redis adapter, plus `ready()` for callers that want to wait for the first connection (tests, start-up probes). */
export interface RedisAdapter extends Adapter {
  /** Resolves once both connections are up and subscribed; never rejects (the adapter keeps reconnecting). */
  ready(): Promise<void>;
  /** This node's id in the cluster (the configured id plus a random suffix). */
  readonly nodeId: string;
  /** Event channels this node's subscriber listens to (interest routing). */
  listening(): number;
  /** Event channels this node's publishes are numbered on, for the receivers' gap counts (envelope-gaps.ts). */
  numbered(): number;
}

type ControlMessage = { type: 'terminate'; appId: string; userId: string };

/**
 * A change that must reach Redis eventually (a leave, a released connection, a signed-in user's presence): retried once
 * Redis is back. An `idempotent` one (its script changes nothing the second time) is also retried while Redis answers,
 * since a command that timed out may or may not have run. Counted in `status().pending` while kept.
 */
interface Deferred {
  run: () => Promise<unknown>;
  /** After each attempt, once its outcome is handled: `recorded` with the run's result, or kept for a retry. */
  attempted?: (recorded: boolean, result?: unknown) => void;
  /** The engine closed with the change still kept. */
  reject: (err: unknown) => void;
  idempotent?: boolean;
  /** Kept for later (held while Redis was down, or failed): counted in `status().pending` until recorded. */
  kept?: boolean;
}

/** The drain's leave grace (`holdLeaves`): the leaves held, run by `end` once; `over` resolves then. */
interface LeaveGrace {
  leaves: (() => void)[];
  /** What the holders were given: `settle` waits for these, so the callers' handlers (webhooks) have run by then. */
  recorded: Promise<unknown>[];
  ended: boolean;
  over: Promise<void>;
  end: () => void;
}

/** A subscription this node holds (or is recording): what `rerecord` records again and `pruneShare` keeps. */
interface HeldSubscription {
  appId: string;
  channel: string;
  socketId: string;
  member: MemberRef | null;
  maxMembers: number;
}

/** A signed-in user's presence on this node not recorded yet: the state to write, and the callers waiting for an attempt. */
interface PresenceWrite {
  online: boolean;
  /** Recorded again after Redis lost its data (no `online` for watchers who have it); a sign-in merged into it clears it. */
  restore: boolean;
  waiters: (() => void)[];
}

export function createRedisAdapter(options: RedisAdapterOptions): RedisAdapter {
  const { metrics, logger, cacheTtlMs, nodeTtlMs = 5000, now = Date.now } = options;
  const keys = new RedisKeys(options.prefix ?? 'beacon');
  const nodeId = `${options.nodeId}:${randomBytes(4).toString('hex')}`;
  const connection = {
    retryStrategy: (times: number) => Math.min(times * RETRY_STEP_MS, RETRY_MAX_MS),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: COMMAND_TIMEOUT_MS,
    // Resubscribing is done here on every `ready`, so `up` becomes true only once the subscriptions are back.
    autoResubscribe: false,
    lazyConnect: false,
    ...(options.access?.username === undefined ? {} : { username: options.access.username }),
    ...(options.access?.password === undefined ? {} : { password: options.access.password }),
    ...(options.access?.tls === true ? { tls: {} } : {}),
  };
  const target: RedisTarget =
    options.clusterNodes !== undefined && options.clusterNodes.length > 0
      ? { clusterNodes: options.clusterNodes }
      : options.sentinels !== undefined && options.sentinels.length > 0
        ? {
            sentinels: options.sentinels,
            master: options.sentinelMaster ?? 'mymaster',
            sentinelUsername: options.sentinelUsername,
            sentinelPassword: options.sentinelPassword,
          }
        : { url: options.url };
  const link = createRedisLink(target, connection, nodeId);
  const pub = link.commands;
  // Set by onCountPublished below; the trailing counts of big channels are reported through it.
  let countPublished: (appId: string, channel: string, count: number) => void = () => {};
  const membership = new RedisMembership(pub, keys, nodeId, link.publishCommand, options.countsSubscriptions, (appId, channel, count) =>
    countPublished(appId, channel, count),
  );
  // Losses of pub/sub counted by the nodes that missed them (envelope-gaps.ts).
  const numbering = new Numbering(nodeId);
  const gaps = new GapCounter();
  const generations = setInterval(() => {
    numbering.rotate();
    gaps.rotate();
  }, GENERATION_MS);
  generations.unref();
  const interest = new Interest(link.events, (channel) => gaps.forget(channel));
  const markers = new FlushMarkers({
    sharded: link.publishCommand === 'SPUBLISH',
    control: keys.control,
    publish: (channel, message) => (channel === keys.control ? pub.publish(channel, message) : link.publish(channel, message)),
    listens: (channel) => interest.listens(channel),
    listened: () => interest.listened(),
    shardOf: (channel) => link.shardOf(channel),
  });

  /** A stored cached event, unless it expired: also checked against this node's clock, so an injected one (tests) governs it as PX does. */
  const unexpired = (raw: string): CachedEvent | undefined => {
    const stored = decodeCachedEvent(raw);
    return stored !== undefined && stored.expiresAt > now() ? stored.event : undefined;
  };

  /**
   * A cache channel's event: stored and published in one step (redis-scripts.ts PUBLISH_CACHED_LUA), so a subscriber's
   * ordered read (`cacheReplay`) finds it stored exactly when its envelope is ahead of the read's marker.
   */
  const storeAndPublish = (envelope: Envelope, cached: CachedEvent, events: string, message: string): Promise<void> => {
    const value = encodeCachedEvent(cached, now() + cacheTtlMs);
    const args = [value, cacheTtlMs, link.publishCommand, events, message];
    return publishCached.inOrder(pub, [keys.cache(envelope.appId, envelope.channel)], args).then((refused) => {
      if (refused === 1) metrics.cacheEvicted(envelope.appId);
    });
  };

  let deliver: (envelope: Envelope) => void = () => {};
  let terminate: (appId: string, userId: string) => void = () => {};
  let reaped: (channels: ReapedChannel[]) => void = () => {};
  /** Set by onEventsMissed: told what this node may miss, and when it can be read (realtime/member-resync.ts). */
  let missed: MissedEventsListener = { missing: () => undefined, recovered: () => undefined };
  const everyChannel = (): boolean => true;
  /** Resubscriptions of the subscriber so far: what a gap across one lost, that resubscription's `recovered` read again. */
  let subscriberEra = 0;
  /** Pending re-reads after a shard came back: its other nodes' subscribers may still be reconnecting meanwhile. */
  const shardRereads = new Set<NodeJS.Timeout>();
  let userPresence: (appId: string, userId: string, online: boolean) => void = () => {};
  // Every node hears every app's watchlist transitions (few: sign-in firsts and lasts); subscribed with the rest on `ready`.
  const watchChannels = new Set((options.appIds ?? []).map((id) => keys.users(id).events));
  for (const channel of watchChannels) interest.acquire(channel).catch(() => undefined);
  let subscribed = false;
  let state: 'starting' | 'up' | 'down' = 'starting';
  let dropped = 0;
  let closed = false;
  const waiters: (() => void)[] = [];
  const deferred: Deferred[] = [];
  /** The last removal of this node's own share (`reapOwnShare`), settled: the next one waits for it. */
  let ownReap: Promise<unknown> = Promise.resolve();
  /** Changes kept and not recorded yet: those in `deferred` and those being retried (`status().pending`). */
  let kept = 0;
  /** The retry of the idempotent removals that failed while Redis was up (at most one pending). */
  let redo: NodeJS.Timeout | undefined;
  /**
   * Leaves (and take-backs of failed joins) not recorded yet, per socket and channel: a join of the same socket to the same
   * channel waits for them, or a retried leave could remove the subscription that join records.
   */
  const removals = new Map<string, Promise<unknown>>();
  /**
   * Joins whose last attempt got no answer (it may have run) and whose caller has neither tried them again successfully
   * nor given them up (`abandonJoin`), per socket and channel: their next attempt asks the script for what an earlier one
   * changed.
   */
  const unanswered = new Set<string>();
  /**
   * Signed-in users whose presence on this node is not recorded yet: the latest state wins, one write per user at a time, so
   * a retried `offline` can never land after the `online` that followed it.
   */
  const presence = new Map<string, PresenceWrite>();
  /**
   * What this node holds in the cluster state, to record it again when its share was lost (`rerecord`): subscriptions by
   * socket and channel, counted connections (id → app and quota), signed-in users (app and user id).
   */
  const held = new Map<string, HeldSubscription>();
  const reservations = new Map<string, { appId: string; max: number }>();
  /**
   * Joins sent and not answered yet, and those whose answer never came until they are tried again or taken back
   * (`unanswered`), per socket and channel; and reservations not answered yet: recorded in Redis, or about to be, though
   * not in `held` / `reservations` yet, so a prune (`pruneShare`) keeps them.
   */
  const joining = new Map<string, HeldSubscription>();
  const reserving = new Set<string>();
  const signedIn = new Map<string, { appId: string; userId: string }>();
  /**
   * Subscriptions being recorded again (`rerecord`), per socket and channel, until that attempt settles. A leave that comes
   * meanwhile is recorded after it: its script then takes out what the record put back, so the removal is the leave's own
   * — its outcome (member_removed, channel_vacated, the caller's webhooks) and, in a drain, its wait for the leave grace.
   */
  const rerecording = new Map<string, Promise<void>>();
  /**
   * The drain's leave grace (`holdLeaves`): the leaves of the connections it closed wait in `leaves` until `end` runs them
   * — when the grace is over, at `settle` (at once if nothing is held) or `close`, or at once when no other node serves.
   */
  let grace: LeaveGrace | undefined;
  /** Runs `record` now, or once the leave grace is over when one is under way. */
  const afterGrace = <T>(record: () => Promise<T>): Promise<T> => {
    const g = grace;
    if (g === undefined || g.ended) return record();
    const recorded = new Promise<T>((resolve, reject) => g.leaves.push(() => record().then(resolve, reject)));
    g.recorded.push(recorded);
    return recorded;
  };
  /** Whether another node is alive and not draining: one this node's clients can reconnect to. */
  async function othersServe(): Promise<boolean> {
    const others = (await pub.smembers(keys.nodes)).filter((id) => id !== nodeId);
    const states = await Promise.all(
      others.map(async (id) => {
        const [alive, draining] = await Promise.all([pub.exists(keys.node(id)), pub.exists(keys.draining(id))]);
        return alive === 1 && draining === 0;
      }),
    );
    return states.includes(true);
  }
  /** Whether changes failed while Redis answered and are retried (`adapter_changes_pending` was logged, not yet `…_recorded`). */
  let retrying = false;
  const inflight = new Set<Promise<unknown>>();

  const isUp = (): boolean => !closed && subscribed && link.ready();
  /**
   * Whether the channel's shard is down (Redis Cluster; one Redis: never). Its name is built only while a shard is down:
   * the API asks for every channel it publishes to, and `publish` for every envelope.
   */
  const shardDown = (appId: string, channel: string): boolean => link.someShardDown() && link.shardDown(keys.channel(appId, channel).events);
  /** Shards that stopped answering with their connection open (redis-stalls.ts): the API refuses their publishes too. */
  const stalls = new ShardStalls({
    probe: (key) => pub.exists(key),
    stalled: (shard) =>
      logEvent(
        logger,
        'warn',
        { event: 'adapter_stalled', adapter: 'redis', node: nodeId, shard, timeout_ms: COMMAND_TIMEOUT_MS },
        'cluster engine: Redis does not answer; the API refuses publishes to its channels',
      ),
    answered: (shard, stalledForMs) =>
      logEvent(logger, 'info', { event: 'adapter_stall_ended', adapter: 'redis', node: nodeId, shard, stalled_for_ms: stalledForMs }, 'cluster engine: Redis answers again'),
  });
  /** What the API must refuse to publish to (503): a channel whose shard is down or stalled. */
  const refusesPublishes = (appId: string, channel: string): boolean => {
    if (!link.someShardDown() && !stalls.some()) return false;
    const events = keys.channel(appId, channel).events;
    return link.shardDown(events) || (stalls.some() && stalls.has(link.shardOf(events)));
  };

  /**
   * The congestion episode under way (the backlog over PUBLISH_BACKLOG_MAX_BYTES): when it began, the largest backlog
   * read during it, and the publishes dropped for it (`backlog`). Transitions are noticed where the backlog is read
   * anyway — `status()` (the API's admission of each publish request, /readyz, the gauges), `publish`, and the heartbeat's
   * interval, so an episode ends in the log even when nothing publishes or asks — and each is logged once.
   */
  let congestion: { since: number; peakBytes: number; dropped: number } | undefined;
  /** The bytes written to Redis and not taken yet, with a congestion episode begun or ended if they crossed the bound. */
  const backlog = (): number => {
    const bytes = link.backlog();
    if (congestion === undefined) {
      if (bytes <= PUBLISH_BACKLOG_MAX_BYTES) return bytes;
      congestion = { since: performance.now(), peakBytes: bytes, dropped: 0 };
      logEvent(
        logger,
        'warn',
        { event: 'adapter_congested', adapter: 'redis', node: nodeId, backlog_bytes: bytes, limit_bytes: PUBLISH_BACKLOG_MAX_BYTES },
        'cluster engine congested: Redis has not taken what this node sent; the API refuses publishes',
      );
    } else if (bytes > PUBLISH_BACKLOG_MAX_BYTES) {
      congestion.peakBytes = Math.max(congestion.peakBytes, bytes);
    } else {
      const { since, peakBytes, dropped } = congestion;
      congestion = undefined;
      const line = {
        event: 'adapter_congestion_ended',
        adapter: 'redis',
        node: nodeId,
        backlog_bytes: bytes,
        peak_backlog_bytes: peakBytes,
        dropped,
        congested_for_ms: Math.round(performance.now() - since),
      } as const;
      logEvent(logger, 'info', line, 'cluster engine no longer congested');
    }
    return bytes;
  };
  const congested = (): boolean => backlog() > PUBLISH_BACKLOG_MAX_BYTES;
  /**
   * Each time the engine comes up: a Redis whose `maxmemory-policy` may evict Beacon's keys is said (redis-eviction.ts),
   * once per server and policy (a review: a flapping Redis Cluster said it for every master at every reconnect).
   */
  const evictingSaid = new Set<string>();
  /** Servers that refused INFO to this node's user: said once each (redis-info.ts). */
  const infoDeniedSaid = new Set<string>();
  const infoDenied = (server: string): void => {
    if (infoDeniedSaid.has(server)) return;
    infoDeniedSaid.add(server);
    logEvent(
      logger,
      'warn',
      { event: 'adapter_info_denied', adapter: 'redis', node: nodeId, server },
      "Redis refuses INFO to this node's user: a Redis back at an older state (a snapshot, a replica promoted) and an evicting maxmemory-policy go unseen; grant it +info",
    );
  };
  const warnIfEvicting = async (): Promise<void> => {
    for (const { server, policy, maxmemory } of await evictingServers(pub, infoDenied)) {
      const said = `${server} ${policy}`;
      if (evictingSaid.has(said)) continue;
      evictingSaid.add(said);
      logEvent(
        logger,
        'warn',
        { event: 'adapter_eviction_policy', adapter: 'redis', node: nodeId, server, policy, maxmemory },
        'Redis may evict the cluster state under this maxmemory-policy: run it with noeviction',
      );
    }
  };
  /** While down: the reason said last, when, and since when the engine is down (`adapter_still_down`). */
  let downSaid: { reason: string | undefined; at: number; since: number } | undefined;
  const refresh = (reason?: string): void => {
    if (isUp() && state !== 'up') {
      state = 'up';
      downSaid = undefined;
      logEvent(logger, 'info', { event: 'adapter_up', adapter: 'redis', node: nodeId, dropped_while_down: dropped }, 'cluster engine up');
      dropped = 0;
      void warnIfEvicting();
      membership.relist();
      tick();
      for (const d of deferred.splice(0)) runDurable(d);
      for (const w of waiters.splice(0)) w();
    } else if (!isUp() && !closed && (state === 'up' || (state === 'starting' && reason !== undefined))) {
      // Before the first `ready` a connection that is merely still connecting is not "down"; a failure is.
      state = 'down';
      downSaid = { reason, at: performance.now(), since: performance.now() };
      logEvent(logger, 'warn', { event: 'adapter_down', adapter: 'redis', node: nodeId, reason }, 'cluster engine down');
    } else if (state === 'down' && !closed && !generic(reason) && downSaid !== undefined && reason !== downSaid.reason) {
      // What failed may be learned after the engine went down: a connection closed (killed, a failover), then its
      // reconnections refused (a password changed, a certificate expired). Said at once when the last word only said
      // that it closed, otherwise at most once a minute while the reason changes (a probe: WRONGPASS never said).
      const now = performance.now();
      if (!generic(downSaid.reason) && now - downSaid.at < STILL_DOWN_LOG_MS) return;
      downSaid = { ...downSaid, reason, at: now };
      const line = { event: 'adapter_still_down', adapter: 'redis', node: nodeId, reason, down_for_ms: Math.round(now - downSaid.since) } as const;
      logEvent(logger, 'warn', line, 'cluster engine still down');
    }
  };

  const reaper = createReaper({
    client: pub,
    keys,
    membership,
    logger,
    nodeId,
    nodeTtlMs,
    reaped: (channels) => reaped(channels),
    expired: (dataLost, restored) => rerecord(dataLost, restored),
    infoDenied,
  });
  /** Heartbeat, then a look for dead nodes to reap. */
  const tick = (): void => {
    if (isUp()) void reaper.tick();
  };
  const beat = setInterval(() => {
    // A congestion episode is logged, and its end, even when nothing reads the status meanwhile (nobody publishes).
    backlog();
    tick();
  }, Math.max(100, Math.floor(nodeTtlMs / 3)));
  beat.unref();

  /** A subscriber that keeps failing to subscribe is replaced (redis-link.ts says why). */
  const subscribing = failureStreak(RENEW_SUBSCRIBER_AFTER_MS, () => link.renewSubscriber());
  let retry: NodeJS.Timeout | undefined;
  /** Subscribes the control channel and every channel of interest; retried while it fails (a shard still connecting). */
  const resubscribe = (): void => {
    interest.reset();
    const channels = interest.channels();
    link
      .resubscribe(keys.control, channels)
      .then(() => {
        interest.resubscribed(channels);
        subscribed = true;
        subscribing.succeeded();
        refresh();
        // What went out while the subscriber was away is lost, and with it maybe a member event no later one repairs.
        subscriberEra++;
        missed.recovered();
      })
      .catch((err: Error) => {
        refresh(err.message);
        subscribing.failed();
        if (closed || retry !== undefined) return;
        retry = setTimeout(() => {
          retry = undefined;
          resubscribe();
        }, RESUBSCRIBE_RETRY_MS);
        retry.unref();
      });
  };
  /**
   * Until when a run of publish numbers that reached nobody is kept anyway (Numbering.answered): for a generation after
   * any change of this node's connections (a failover, a Sentinel's switch, a shard down or back), when subscribers may
   * still be on a server whose PUBLISH answers do not count them (a demoted master, now a replica).
   */
  let dropsHeldUntil = 0;
  const holdDrops = (): void => {
    dropsHeldUntil = performance.now() + (options.unheardHoldMs ?? GENERATION_MS);
  };
  link.listen({
    subscriberReady: () => {
      holdDrops();
      resubscribe();
    },
    ready: () => {
      holdDrops();
      refresh();
    },
    closed: (subscriber, reason) => {
      holdDrops();
      if (subscriber) {
        subscribed = false;
        // What is published from now until it is subscribed again never reaches this node; nor do flush markers in flight.
        missed.missing(everyChannel);
        markers.subscriberLost();
      }
      else stalls.closed();
      refresh(reason ?? 'connection closed');
    },
    error: (reason) => {
      holdDrops();
      refresh(reason);
    },
    shardDown: (shard) => {
      holdDrops();
      stalls.closed(shard);
      // Its sharded subscribers are gone with it. Every channel: the client's slot map may already name another master.
      missed.missing(everyChannel);
      markers.subscriberLost(shard);
      if (closed) return;
      logEvent(logger, 'warn', { event: 'adapter_shard_down', adapter: 'redis', node: nodeId, shard }, 'cluster engine: a shard is down; the API refuses publishes to its channels');
    },
    shardUp: (shard, downForMs) => {
      holdDrops();
      if (closed) return;
      logEvent(logger, 'info', { event: 'adapter_shard_up', adapter: 'redis', node: nodeId, shard, down_for_ms: downForMs }, 'cluster engine: a shard is back');
      // The changes kept while it was down run now, and the sharded subscribers reconnect on their own (ioredis backs off
      // up to ~2.5 s) without telling: what they missed is found by re-reading once they are back (docs/scaling.md).
      const later = setTimeout(() => {
        shardRereads.delete(later);
        if (!closed) missed.recovered();
      }, SHARD_REREAD_DELAY_MS);
      later.unref();
      shardRereads.add(later);
    },
    sentinelWatch: (sentinel, error) => {
      if (closed) return;
      if (error === undefined) {
        logEvent(logger, 'info', { event: 'adapter_sentinel_watch_resumed', adapter: 'redis', node: nodeId, sentinel }, 'cluster engine: listening to a Sentinel for the master\'s switch again');
        return;
      }
      logEvent(
        logger,
        'warn',
        { event: 'adapter_sentinel_watch_failed', adapter: 'redis', node: nodeId, sentinel, error },
        "cluster engine: a Sentinel refused to tell this node its master's switch (tried again every 5 s): a demoted master is left only once a command meets READONLY",
      );
    },
    message: (channel, message) => {
      // A flush marker may come on any channel this node listens to, the apps' watch channels included (redis-flush.ts).
      if (markers.received(message)) return;
      if (channel === keys.control) onControl(message);
      else if (watchChannels.has(channel)) onUserPresenceMessage(message);
      else onEnvelopeMessage(channel, message);
    },
  });

  function onEnvelopeMessage(channel: string, message: string): void {
    const decoded = decodeStamped(message);
    if (decoded === undefined) return;
    const { envelope, stamp } = decoded;
    metrics.adapterMessage('received');
    // Only while this node wants the channel and is not subscribing to it anew: what still arrives after its UNSUBSCRIBE
    // must not set a baseline that a re-subscription would read as a gap (the baseline is also dropped when a SUBSCRIBE
    // is acknowledged: redis-interest.ts `countsGaps`).
    if (stamp !== undefined && interest.countsGaps(channel)) {
      const skipped = gaps.received(channel, stamp, subscriberEra);
      if (skipped > 0) {
        metrics.adapterDropped('gap', skipped);
        // A member event lost on this subscription (a gap across a resubscription was read again by it): a sharded
        // subscriber that reconnected unseen, a publish that timed out. Only presence channels have lists to read again.
        // Told before this envelope is delivered: the list read must be at least as new as it.
        if (gaps.previousEra === subscriberEra && channelKind(envelope.channel).presence) {
          const { appId: lostApp, channel: lostChannel } = envelope;
          missed.missing((appId, name) => appId === lostApp && name === lostChannel);
          missed.recovered();
        }
      }
    }
    deliver(envelope);
  }

  function onUserPresenceMessage(message: string): void {
    try {
      const m = JSON.parse(message) as UserPresenceMessage;
      userPresence(m.appId, m.userId, m.online);
    } catch {
      // Not ours: ignored.
    }
  }

  function onControl(message: string): void {
    let m: ControlMessage;
    try {
      m = JSON.parse(message) as ControlMessage;
    } catch {
      return;
    }
    if (m.type === 'terminate') terminate(m.appId, m.userId);
  }

  /**
   * Records a signed-in user's presence on this node (Adapter `userPresence`, or `restore` by `rerecord`); resolves after
   * the next attempt.
   */
  function writePresence(appId: string, userId: string, online: boolean, restore: boolean): Promise<void> {
    // The caller waits for the next attempt only (a sign-in answers once the cluster counts the user); a failed one is
    // kept and retried like a leave. The script is idempotent per node, and a user has one write at a time carrying the
    // latest state, so retries keep a user's online/offline order.
    return new Promise<void>((resolve) => {
      const key = `${appId}\n${userId}`;
      const pending = presence.get(key);
      if (pending !== undefined) {
        pending.online = online;
        pending.restore &&= restore;
        pending.waiters.push(resolve);
      } else {
        const write: PresenceWrite = { online, restore, waiters: [resolve] };
        presence.set(key, write);
        const attempted = (): void => {
          for (const w of write.waiters.splice(0)) w();
        };
        const run = async (): Promise<void> => {
          for (;;) {
            const state = write.online;
            await membership.userPresence(appId, userId, state, write.restore);
            if (write.online === state) break; // else a newer state came meanwhile: write it too
          }
          presence.delete(key);
        };
        runDurable({ run, attempted, reject: attempted, idempotent: true });
      }
      if (!isUp()) resolve();
    });
  }

  /**
   * This node's share of the cluster state was lost: its liveness key had expired when it beat again (Redis restarted
   * empty, or another node reaped it while its heartbeats failed: redis-reaper.ts). Everything it holds is recorded again
   * by the same idempotent scripts — each subscription (with its presence member), each counted connection, each
   * signed-in user — so what is still recorded changes nothing. What is let go meanwhile is taken back out after: a leave
   * by its own script, run after the record of its subscription (`rerecording`), a release or a sign-out after theirs.
   * One `node_share_recorded` line says what was recorded once every change has been attempted.
   *
   * After a reap the members and users it removed were announced gone (`member_removed`, watchlist `offline`), so their
   * return is announced too. When Redis lost its data (`dataLost`) nothing was announced and the clients still hold them:
   * they are restored without `member_added` / `online` (the scripts announce them only to make up for a member list or
   * a watchlist answered since the loss, redis-scripts.ts). When Redis went back to an older state (`restored`), what
   * left since that state was saved is pruned once the share is recorded (`pruneShare`).
   */
  let recording = 0;
  /** Whether the run under way restores silently (Redis lost its data); undefined once it is over. */
  let restoring: boolean | undefined;
  function rerecord(dataLost: boolean, restored = false): void {
    if (restored) pruneDue = true;
    // A later loss (two in a row) restarts the work: what an older run has not sent yet is left to the newer one. It
    // announces if the older one did: a reap's removals announced, then Redis' data lost before all came back.
    const restore = dataLost && restoring !== false;
    restoring = restore;
    // The member lists are read again once the share is recorded (`missed.recovered` below), whatever changed.
    if (dataLost) missed.missing(everyChannel, true);
    const run = ++recording;
    const current = (): boolean => run === recording && !closed;
    membership.relist();
    const started = performance.now();
    // Already admitted: recorded again without the limits (a seat or a quota slot taken meanwhile must not refuse it).
    const changes: (() => Promise<void>)[] = [];
    const again = (record: () => Promise<unknown>, after?: () => void) => (): Promise<void> =>
      new Promise<void>((resolve) =>
        runDurable({
          run: () => (current() ? record() : Promise.resolve()),
          attempted: (recorded) => {
            if (!recorded) return;
            after?.();
            resolve();
          },
          reject: () => resolve(),
          idempotent: true,
        }),
      );
    // Left while it is recorded again: its leave waits for this record and takes it back out (`rerecording`).
    for (const [key, s] of held) {
      const record = (): Promise<unknown> => membership.rejoin(s.appId, s.channel, s.socketId, s.member, 0, restore);
      changes.push(again(() => (held.has(key) ? rerecorded(key, record()) : Promise.resolve())));
    }
    for (const [id, r] of reservations) {
      changes.push(
        again(
          () => (reservations.has(id) ? membership.reserveConnection(r.appId, 0, id) : Promise.resolve()),
          () => {
            if (!reservations.has(id)) runDurable({ run: () => membership.releaseConnection(r.appId, id), reject: () => undefined, idempotent: true });
          },
        ),
      );
    }
    // One write per user at a time, with the user's latest state (writePresence): a sign-out meanwhile is written after.
    for (const u of signedIn.values()) {
      changes.push(() => (current() ? writePresence(u.appId, u.userId, true, restore) : Promise.resolve()));
    }
    const line = {
      event: 'node_share_recorded',
      node: nodeId,
      subscriptions: held.size,
      connections: reservations.size,
      users: signedIn.size,
      data_lost: dataLost,
    } as const;
    // A few at a time: the whole share at once (tens of thousands of scripts) would queue past the command timeout, be
    // retried while Redis still works through it, and congest the connection publishes share.
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < changes.length && current()) await changes[next++]!();
    };
    void Promise.all(Array.from({ length: RERECORD_CONCURRENCY }, worker)).then(() => {
      if (!current()) return;
      restoring = undefined;
      logEvent(logger, 'info', { ...line, duration_ms: Math.round(performance.now() - started) }, "cluster engine: this node's share recorded again");
      // The member lists read while it was being recorded lacked it (`unrecorded`): read again — after the prune when
      // Redis went back to an older state (`pruneShare` reads them at its end, `unrecorded` until then), or the lists
      // would give every subscriber the members that left since the snapshot back for a moment (a probe: listed again,
      // then removed again).
      if (pruneDue) void pruneShare();
      else missed.recovered();
    });
  }

  /**
   * Redis went back to an older state (redis-reaper.ts: it restarted with data loaded from a snapshot, or a replica
   * took over): besides what this node recorded since that state was saved (recorded again by `rerecord`), what left
   * since is back — subscriptions with their members, counted connections, signed-in users — recorded for this node,
   * which lives, so no reap removes them and no leave will come: members listed to every joiner and counted for good
   * (a probe: a presence channel with no subscriber anywhere stayed occupied with 5 members). Once the share is recorded
   * again, whatever Redis has for this node that it does not hold is removed and announced to the clients
   * (`member_removed`, watchlist `offline`): a joiner may have been listed them. No `member_removed` / `channel_vacated`
   * webhook: they went out when those left (below).
   *
   * What the node holds is what it has recorded or is recording (`held`, `joining`; `reservations`, `reserving`;
   * `signedIn`, `presence`), as it is when each script is sent: every change sent before a channel's script has run when
   * it runs (the scripts go in order, on the connection its channel's changes go on), and one sent after runs after it. A
   * leave sent after it finds its subscription already gone and changes nothing. Not during a drain's leave grace, whose
   * held leaves are not held any more but still recorded on purpose (the drain removes the node's whole share after it):
   * a prune that finds one begun stops. Channels go `PRUNE_BATCH` at a time; a step that fails (not one that timed out,
   * which ran) has the whole prune tried again a TTL later, then twice as long each time, up to a minute.
   */
  let pruneDue = false;
  /** A prune under way: one at a time; one asked for meanwhile (another restore) runs after it. */
  let pruning = false;
  /** Prunes in a row that a failing step had tried again: each waits twice as long, up to a minute. */
  let pruneRetries = 0;
  /** While a prune runs: the joins started since it read what this node holds (`pruneShare` keeps them too). */
  let pruneJoins: HeldSubscription[] | undefined;
  const inGrace = (): boolean => grace !== undefined && !grace.ended;
  /**
   * Whether a member list read now could lack this node's own subscriptions (its share being recorded again: a channel
   * counts them from the first recorded) or hold members a prune still due will take out (Redis back at an older state).
   */
  const listsUnsettled = (): boolean => restoring !== undefined || pruneDue || pruning;
  async function pruneShare(): Promise<void> {
    if (!pruneDue || closed || inGrace() || pruning) return;
    // Redis down: tried again once it may be back (a TTL later), not said each time.
    if (!isUp()) {
      setTimeout(() => void pruneShare(), nodeTtlMs).unref();
      return;
    }
    pruneDue = false;
    pruning = true;
    const started = performance.now();
    const changed: ReapedChannel[] = [];
    let subscriptions = 0;
    let connections = 0;
    let users = 0;
    let failures = 0;
    let error: string | undefined;
    /** A step failed other than by timing out (which ran all the same): the whole prune is tried again. */
    let again = false;
    const failed = (err: unknown): void => {
      failures++;
      error ??= err instanceof Error ? err.message : String(err);
      if (!(err instanceof Error && isTimeout(err))) again = true;
    };
    // A drain that began meanwhile holds leaves (and sign-outs) not in `held` any more but recorded on purpose, and removes
    // the node's whole share after them: the prune stops there.
    const stopped = (): boolean => closed || inGrace();
    try {
      const pairs = await membership.subscribedPairs();
      // What this node holds or is recording now, per channel; the joins started from here on are added before each batch
      // is sent. A subscription let go meanwhile stays kept: its own leave takes it out.
      const kept = new Map<string, Map<string, string>>();
      const keep = (s: HeldSubscription): void => {
        const pair = JSON.stringify([s.appId, s.channel]);
        let sockets = kept.get(pair);
        if (sockets === undefined) kept.set(pair, (sockets = new Map()));
        sockets.set(s.socketId, s.member?.userId ?? '');
      };
      pruneJoins = [];
      for (const s of held.values()) keep(s);
      for (const s of joining.values()) keep(s);
      // A batch at a time, as `rerecord` records: every channel's script at once (tens of thousands, each with the script's
      // text) congested the connection publishes share past its bound and timed out (a review: publishes refused at
      // 15 000 channels; 13 400 webhooks never sent at 40 000).
      for (let i = 0; i < pairs.length && !stopped(); i += PRUNE_BATCH) {
        for (const s of pruneJoins.splice(0)) keep(s);
        const batch = pairs.slice(i, i + PRUNE_BATCH);
        const steps = await Promise.allSettled(batch.map((pair) => membership.pruneChannel(pair, kept.get(pair) ?? new Map())));
        const batchChanged: ReapedChannel[] = [];
        for (const step of steps) {
          if (step.status === 'rejected') failed(step.reason);
          else {
            subscriptions += step.value.removed;
            if (step.value.changed !== undefined) batchChanged.push(step.value.changed);
          }
        }
        // What a prune removes left before the snapshot was restored, and its webhooks went out then (or a rejoin
        // cancelled them): sent again, a removal was held for the vacate delay and a rejoin dropped it with its own
        // member_added, leaving the receiver with the member removed (a probe). Only a count published goes out, as any.
        const counts = batchChanged.filter((c) => c.count !== undefined).map((c) => ({ ...c, removedUsers: [], vacated: false }));
        if (counts.length > 0) reaped(counts);
        changed.push(...batchChanged);
      }
      pruneJoins = undefined;
      for (const appId of stopped() ? [] : await membership.nodeAppIds()) {
        const [ids, signed] = await Promise.all([membership.reservationIds(appId), membership.signedInUsers(appId)]);
        if (stopped()) break;
        for (const id of ids) {
          if (reservations.has(id) || reserving.has(id)) continue;
          connections++;
          runDurable({ run: () => membership.releaseConnection(appId, id), reject: () => undefined, idempotent: true });
        }
        for (const userId of signed) {
          const key = `${appId}\n${userId}`;
          if (signedIn.has(key) || presence.has(key)) continue;
          users++;
          void writePresence(appId, userId, false, false);
        }
      }
    } catch (err) {
      // The node's indexes could not be read.
      failed(err);
    } finally {
      pruneJoins = undefined;
      pruning = false;
    }
    if (again && !stopped()) {
      // Tried again later (what is already pruned changes nothing the second time), said each time: a TTL, then twice as
      // long each time it fails again, up to a minute.
      pruneDue = true;
      setTimeout(() => void pruneShare(), Math.min(60_000, nodeTtlMs * 2 ** pruneRetries++)).unref();
    } else {
      pruneRetries = 0;
      // Another restore seen while this one ran: its prune was asked for and waited.
      if (pruneDue) setImmediate(() => void pruneShare());
    }
    const removedAny = subscriptions + connections + users > 0;
    const line: LogLine = {
      event: 'node_share_pruned',
      node: nodeId,
      subscriptions,
      members_removed: changed.reduce((n, c) => n + c.removedUsers.length, 0),
      channels_vacated: changed.filter((c) => c.vacated).length,
      connections,
      users,
      failures,
      error: error ?? null,
      stopped: stopped(),
      duration_ms: Math.round(performance.now() - started),
    };
    const msg = "cluster engine: Redis went back to an older state; what left since was removed from this node's share";
    logEvent(logger, removedAny || failures > 0 ? 'warn' : 'info', line, msg);
    // Pruned: the member lists left unread while it was due (`unrecorded`) are read now.
    if (!pruneDue) missed.recovered();
  }

  /**
   * Lists a subscription's record again in `rerecording` until it settles. One that failed may still run late, but it was
   * sent before any leave that waited for it, on the same connection, so that leave's script runs after it all the same.
   */
  function rerecorded<T>(key: string, record: Promise<T>): Promise<T> {
    const settled = record.then(
      () => undefined,
      () => undefined,
    );
    rerecording.set(key, settled);
    void settled.then(() => {
      if (rerecording.get(key) === settled) rerecording.delete(key);
    });
    return record;
  }

  /** Tracks a membership operation so `close` can wait for it. */
  function track<T>(p: Promise<T>): Promise<T> {
    inflight.add(p);
    const forget = (): void => {
      inflight.delete(p);
    };
    p.then(forget, forget);
    return p;
  }

  function runDurable(d: Deferred): void {
    if (closed) {
      d.reject(new Error('adapter closed'));
      return;
    }
    if (!isUp()) {
      keep(d);
      return;
    }
    track(d.run()).then(
      (result) => {
        if (d.kept === true) {
          d.kept = false;
          kept--;
          if (retrying && kept === 0) {
            retrying = false;
            logEvent(logger, 'info', { event: 'adapter_changes_recorded', adapter: 'redis', node: nodeId }, 'cluster engine: pending changes recorded');
          }
        }
        d.attempted?.(true, result);
      },
      (err: unknown) => {
        // Redis went away mid-way, or a command timed out: keep it until Redis is back, or retry it soon if it is idempotent.
        if (closed) {
          d.reject(new Error('adapter closed'));
          return;
        }
        retryLater(d);
        if (!retrying && isUp()) {
          // Once per episode (until everything kept is recorded), not per change: a stalled Redis fails many at once.
          retrying = true;
          const error = err instanceof Error ? err.message : String(err);
          logEvent(logger, 'warn', { event: 'adapter_changes_pending', adapter: 'redis', node: nodeId, pending: kept, error }, 'cluster engine: a change failed, retrying');
        }
        d.attempted?.(false);
      },
    );
  }

  function keep(d: Deferred): void {
    if (d.kept !== true) kept++;
    d.kept = true;
    deferred.push(d);
  }

  /** Runs an idempotent removal until it is recorded (or the engine closes), listed in `removals` meanwhile. */
  function removal<T>(key: string, run: () => Promise<T>): Promise<T> {
    const recorded = new Promise<T>((resolve, reject) =>
      runDurable({
        run,
        attempted: (recorded, result) => {
          if (recorded) resolve(result as T);
        },
        reject,
        idempotent: true,
      }),
    );
    // A join of the same socket and channel waits for every removal still pending, not only the latest (a take-back of a
    // re-recorded subscription can come while the leave before it is still retried).
    const prior = removals.get(key);
    const pending = prior === undefined ? recorded : Promise.allSettled([prior, recorded]).then(() => recorded);
    removals.set(key, pending);
    const forget = (): void => {
      if (removals.get(key) === pending) removals.delete(key);
    };
    pending.then(forget, forget);
    return recorded;
  }

  /**
   * This node's own share, as it goes (the drain's `reapOwn`, then `close`): the changes kept for a retry are run now and
   * waited for (bounded), their callers handling their outcomes as usual; whatever is still recorded for this node after
   * that — a change whose caller gave up on it — is removed as a dead node's share is, and what that removed is reported
   * to `onReaped`, so its webhooks go out (before, the removal at close was announced to nobody). Undefined while Redis is
   * down, or when the reap could not read what the node holds.
   */
  function reapOwnShare(): Promise<ReapOutcome | undefined> {
    // One at a time: close's must not run beside the drain's that outlasted its bound (both would remove, and announce).
    const run = async (): Promise<ReapOutcome | undefined> => {
      if (!isUp()) return undefined;
      for (const d of deferred.splice(0)) runDurable(d);
      await Promise.race([Promise.allSettled([...inflight]), delay(COMMAND_TIMEOUT_MS * 2)]);
      const own = await membership.reap(nodeId).catch(() => undefined);
      if (own !== undefined && own.channels.length > 0) reaped(own.channels);
      return own;
    };
    const next = ownReap.then(run, run);
    ownReap = next.catch(() => undefined);
    return next;
  }

  /**
   * Keeps a failed removal for the next `up`. An idempotent one is tried again after RETRY_MAX_MS while Redis answers: a
   * timed-out leave that never ran would otherwise keep its subscription counted cluster-wide until the next reconnection.
   */
  function retryLater(d: Deferred): void {
    keep(d);
    if (d.idempotent !== true || redo !== undefined) return;
    redo = setTimeout(() => {
      redo = undefined;
      if (!isUp()) return; // the next `up` runs them all
      const again = deferred.filter((x) => x.idempotent === true);
      for (const x of again) deferred.splice(deferred.indexOf(x), 1);
      for (const x of again) runDurable(x);
    }, RETRY_MAX_MS);
    redo.unref();
  }

  /**
   * A request refused to its caller because Redis failed it while up (an error such as `OOM`, or no answer in time): the
   * subscription gets 503, the query rejects (the HTTP API answers 503). One warn line at most every
   * `requestFailureLogMs`, with the first error since the last line and how many failed since; failures within a period
   * after its line are said by a line at its end, so the last of an episode are not left unsaid.
   */
  const requestFailureLogMs = options.requestFailureLogMs ?? REQUEST_FAILURE_LOG_MS;
  let requestFailures = 0;
  let requestFailureLoggedAt = -Infinity;
  /** The first failure since the last line, said at the period's end (`sayFailures`); undefined when none. */
  let unsaidFailure: { op: 'join' | 'reserve' | 'publish' | AdapterOp; error: string } | undefined;
  let unsaidTimer: NodeJS.Timeout | undefined;
  function sayFailures(op: 'join' | 'reserve' | 'publish' | AdapterOp, error: string): void {
    requestFailureLoggedAt = performance.now();
    logEvent(logger, 'warn', { event: 'adapter_request_failed', adapter: 'redis', node: nodeId, op, error, failures: requestFailures }, 'cluster engine: a request failed');
    requestFailures = 0;
    unsaidFailure = undefined;
  }
  function sayUnsaidFailures(): void {
    clearTimeout(unsaidTimer);
    unsaidTimer = undefined;
    if (unsaidFailure !== undefined) sayFailures(unsaidFailure.op, unsaidFailure.error);
  }
  function requestFailed(op: 'join' | 'reserve' | 'publish' | AdapterOp, err: unknown): void {
    requestFailures++;
    const error = err instanceof Error ? err.message : String(err);
    const wait = requestFailureLoggedAt + requestFailureLogMs - performance.now();
    // Once closed, at once: no period's end comes after the node is gone.
    if (wait <= 0 || closed) {
      sayFailures(op, error);
      return;
    }
    unsaidFailure ??= { op, error };
    unsaidTimer ??= setTimeout(sayUnsaidFailures, wait).unref();
  }

  /**
   * Runs a query, timed. One the engine could not answer rejects with EngineUnavailableError, whether Redis is down or
   * failed the command: an empty answer in its place would say "nobody there" (a 200 of the HTTP API) when nobody knows.
   */
  async function timed<T>(op: AdapterOp, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      if (!isUp()) throw new EngineUnavailableError('cluster engine down');
      try {
        return await run();
      } catch (err) {
        requestFailed(op, err);
        const error = err instanceof Error ? err.message : String(err);
        throw new EngineUnavailableError(`cluster engine failed the query: ${error}`, { cause: err });
      }
    } finally {
      metrics.adapterRequest(op, (performance.now() - started) / 1000);
    }
  }

  return {
    name: 'redis',
    nodeId,
    onEnvelope(handler) {
      deliver = handler;
    },
    onTerminateUser(handler) {
      terminate = handler;
    },
    onReaped(handler) {
      reaped = handler;
    },
    onEventsMissed(listener) {
      missed = listener;
    },
    // While the share is being recorded again (and pruned), every list is `unrecorded`: a channel's count of this node's
    // subscriptions (what MEMBERS_SINCE_LUA looks at) is above 0 from the first of them recorded, and a list read then
    // lacked the rest — a probe's observer was sent a list without itself after a master restarted empty; before the
    // prune, it holds members that left since the snapshot. The lists are read once it is over (`missed.recovered`).
    membersChangedSince: (appId, name, seq) =>
      listsUnsettled() ? Promise.resolve('unrecorded') : timed('members', () => membership.membersSince(appId, name, seq)),
    onCountPublished(handler) {
      countPublished = handler;
    },
    userPresence(appId, userId, online) {
      const key = `${appId}\n${userId}`;
      if (online) signedIn.set(key, { appId, userId });
      else signedIn.delete(key);
      // A sign-out while the drain holds leaves is written after the grace (nobody waits for an offline's attempt).
      if (!online && grace !== undefined && !grace.ended) {
        afterGrace(() => writePresence(appId, userId, false, false)).catch(() => undefined);
        return Promise.resolve();
      }
      return writePresence(appId, userId, online, false);
    },
    onUserPresence(handler) {
      userPresence = handler;
    },
    async usersOnline(appId, userIds) {
      // None when the engine could not answer (adapter.ts): a sign-in is not refused for its watchlist's first frame.
      return timed('members', () => membership.usersOnline(appId, userIds)).catch(() => new Set<string>());
    },
    publish(envelope, cached) {
      // Not sent, never buffered: Redis is unreachable, or (Redis Cluster) the master of the channel's shard is, where it
      // would only fail or time out (its client events and the like: the HTTP API refuses its own publishes there).
      const engineDown = !isUp();
      if (engineDown || shardDown(envelope.appId, envelope.channel)) {
        // Reported with the next `adapter_up`: a whole-engine outage's count only.
        if (engineDown) dropped++;
        metrics.adapterDropped('down');
        return 'down';
      }
      // Twice the bound the API refuses at: a request admitted just before the engine became congested is carried whole.
      if (backlog() > 2 * PUBLISH_BACKLOG_MAX_BYTES) {
        if (congestion !== undefined) congestion.dropped++;
        metrics.adapterDropped('backlog');
        return 'backlog';
      }
      metrics.adapterMessage('published');
      const events = keys.channel(envelope.appId, envelope.channel).events;
      markers.sent(events);
      const stamp = numbering.next(events);
      const message = encodeEnvelope(envelope, stamp);
      const sent: Promise<unknown> =
        cached === undefined ? link.publish(events, message) : storeAndPublish(envelope, cached, events, message);
      // A command that timed out may still be carried: not `error` (a lost one is a `gap` where it was missed). It marks its
      // shard stalled, and an answer ends that (redis-stalls.ts).
      sent.then(
        (receivers) => {
          // PUBLISH answers how many subscriber connections it reached (a cached publish's script answers otherwise).
          if (typeof receivers === 'number') numbering.answered(events, stamp, receivers, performance.now() >= dropsHeldUntil);
          if (stalls.some()) stalls.answered(link.shardOf(events));
        },
        (err: Error) => {
          const timedOut = isTimeout(err);
          metrics.adapterDropped(timedOut ? 'timeout' : 'error');
          if (timedOut) {
            stalls.timedOut(link.shardOf(events), events);
            // It may still be carried, and reach a node: its run is kept as one that did.
            numbering.answered(events, stamp, 1);
          }
          // Refused by a Redis that answers (`NOPERM`: the engine's user lost its channels; `CLUSTERDOWN`): said, as the
          // engine's other requests are — counted only, a Cluster node whose every publish was refused said nothing and
          // stayed ready (a probe). A connection that closed is said by adapter_down or adapter_shard_down.
          else if (isUp() && !generic(err.message)) requestFailed('publish', err);
        },
      );
      return undefined;
    },
    async join(appId, channel, socketId, member, maxMembers) {
      if (!isUp()) throw new Error('cluster engine down');
      const pending = removals.get(subscriptionKey(appId, channel, socketId));
      if (pending !== undefined && !(await settlesWithin(pending, COMMAND_TIMEOUT_MS))) {
        throw new Error('the last leave of this subscription is not recorded yet');
      }
      const events = keys.channel(appId, channel).events;
      try {
        // Subscribed before the change is recorded: every event of the channel after it reaches this node. A shard's
        // subscriber that was still connecting (Redis Cluster) gets one more try.
        await interest.acquire(events);
      } catch (err) {
        interest.release(events);
        if (!isUp()) throw err;
        try {
          await interest.acquire(events);
        } catch (again) {
          interest.release(events);
          subscribing.failed();
          throw again;
        }
      }
      subscribing.succeeded();
      const key = subscriptionKey(appId, channel, socketId);
      const entry: HeldSubscription = { appId, channel, socketId, member, maxMembers };
      joining.set(key, entry);
      pruneJoins?.push(entry);
      try {
        const outcome = await track(membership.join(appId, channel, socketId, member, maxMembers, unanswered.has(key)));
        if (joining.get(key) === entry) joining.delete(key);
        unanswered.delete(key);
        if (outcome.admitted) held.set(key, entry);
        // Refused (a full presence channel): nothing was recorded, so the channel's subscription is given back, or the node
        // stayed subscribed to it, and received its events, for the rest of its life.
        else interest.release(events);
        return outcome;
      } catch (err) {
        requestFailed('join', err);
        interest.release(events);
        // It may still have run (Redis answered late): the caller tries it again, and that attempt's script answers what
        // this one changed, or gives it up (`abandonJoin`), which takes it back. Taken back here, at once, a join that ran
        // late was seen by the channel's members as added, removed by the take-back, then added again by the retry.
        unanswered.add(key);
        throw err;
      }
    },
    async abandonJoin(appId, channel, socketId, member) {
      const key = subscriptionKey(appId, channel, socketId);
      if (!unanswered.delete(key)) return NOTHING_TOLD;
      // Taken back, or the channel would keep a subscription (and a presence member) no connection holds until this node
      // goes. The leave script changes nothing if the join never ran. One name for all its attempts, as a leave's.
      const receipt = membership.newLeave();
      // Kept by a prune until the take-back is over: it removes what the late join recorded, and says what that changed.
      const entry = joining.get(key);
      const forget = (): void => {
        if (joining.get(key) === entry) joining.delete(key);
      };
      const takenBack = removal(key, () => membership.takeBack(appId, channel, socketId, member, receipt));
      takenBack.then(forget, forget);
      return takenBack.catch(() => NOTHING_TOLD);
    },
    leave(appId, channel, socketId, member) {
      const key = subscriptionKey(appId, channel, socketId);
      held.delete(key);
      interest.release(keys.channel(appId, channel).events);
      // Being recorded again (`rerecord`): after that record, whose script may put the subscription back before this one's.
      const recorded = rerecording.get(key);
      // Every attempt under one name: a retry answers what an attempt that timed out but ran changed (LEAVE_LUA).
      const receipt = membership.newLeave();
      const run = (): Promise<LeaveOutcome> => membership.leave(appId, channel, socketId, member, receipt);
      // While the drain holds leaves, recorded (and its webhooks emitted by the caller) once the grace is over.
      return afterGrace(() => removal(key, recorded === undefined ? run : () => recorded.then(run)));
    },
    async reserveConnection(appId, max, id) {
      if (!isUp()) throw new Error('cluster engine down');
      reserving.add(id);
      try {
        const reserved = await track(membership.reserveConnection(appId, max, id));
        if (reserved) reservations.set(id, { appId, max });
        return reserved;
      } catch (err) {
        requestFailed('reserve', err);
        // Refused to the client, but the reservation may have run (a late answer): take it back, as a failed join.
        runDurable({ run: () => membership.releaseConnection(appId, id), reject: () => undefined, idempotent: true });
        throw err;
      } finally {
        reserving.delete(id);
      }
    },
    releaseConnection(appId, id) {
      reservations.delete(id);
      runDurable({ run: () => membership.releaseConnection(appId, id), reject: () => undefined, idempotent: true });
    },
    channels: (appId, query) => timed('channels', () => membership.channels(appId, query)),
    channel: (appId, name) => timed('counts', () => membership.counts(appId, name)),
    members: (appId, name) => timed('members', () => membership.members(appId, name)),
    hasMember: (appId, name, userId) => timed('members', () => membership.hasMember(appId, name, userId)),
    stillGone: (appId, name, userId, markMs) =>
      timed(userId === undefined ? 'counts' : 'members', () => membership.stillGone(appId, name, userId, markMs)),
    vacateSent: (appId, name, userId) => timed(userId === undefined ? 'counts' : 'members', () => membership.goneSent(appId, name, userId)),
    occupySent(appId, name, userId) {
      if (isUp()) membership.clearGoneSent(appId, name, userId).catch(() => undefined);
    },
    async cacheGet(appId, channel) {
      // A read that fails is a miss, not a refusal: a cached event may be gone at any time (TTL, eviction, a refused
      // write deletes it), so a miss is always a correct answer and the subscriber or the backend fetches the state.
      if (!isUp()) return undefined;
      const raw = await pub.get(keys.cache(appId, channel)).catch(() => null);
      return raw === null ? undefined : unexpired(raw);
    },
    async cacheReplay(appId, channel) {
      if (!isUp()) return undefined;
      const events = keys.channel(appId, channel).events;
      const marker = markers.expect(COMMAND_TIMEOUT_MS);
      const raw = await cacheRead.inOrder(pub, [keys.cache(appId, channel)], [link.publishCommand, events, marker.message]).then(
        (value) => (typeof value === 'string' ? value : null),
        () => {
          marker.cancel();
          return null;
        },
      );
      await marker.arrived;
      return raw === null ? undefined : unexpired(raw);
    },
    cacheSet(appId, channel, event) {
      if (!isUp()) return;
      const value = encodeCachedEvent(event, now() + cacheTtlMs);
      const key = keys.cache(appId, channel);
      // Not written (Redis out of memory, say): the event before it must not be replayed in its place. DEL frees memory,
      // so Redis takes it when it refuses writes for want of memory; the cached event is counted as evicted.
      pub.set(key, value, 'PX', cacheTtlMs).catch(() => {
        metrics.cacheEvicted(appId);
        pub.del(key).catch(() => undefined);
      });
    },
    async terminateUser(appId, userId) {
      // Every node closes the user's connections as it hears this, this one included: not sent, nothing is closed.
      if (!isUp()) throw new EngineUnavailableError('cluster engine down');
      const message: ControlMessage = { type: 'terminate', appId, userId };
      await pub.publish(keys.control, JSON.stringify(message)).catch((err: Error) => {
        throw new EngineUnavailableError(`cluster engine failed the request: ${err.message}`, { cause: err });
      });
    },
    markDraining(ms) {
      // From the drain's first step, whatever this node's connections: a node that has stopped taking clients must not
      // make another's drain hold its leaves for clients that cannot come to it. Expires with the drain (and a TTL).
      if (closed) return;
      pub.set(keys.draining(nodeId), '1', 'PX', Math.ceil(ms) + nodeTtlMs).catch(() => undefined);
    },
    holdLeaves(ms) {
      if (grace !== undefined || closed || ms <= 0 || !isUp()) return;
      let resolve!: () => void;
      const over = new Promise<void>((r) => (resolve = r));
      const timer = setTimeout(() => g.end(), ms);
      timer.unref();
      const g: LeaveGrace = {
        leaves: [],
        recorded: [],
        ended: false,
        over,
        end() {
          if (g.ended) return;
          g.ended = true;
          clearTimeout(timer);
          for (const record of g.leaves.splice(0)) record();
          resolve();
        },
      };
      grace = g;
      // Nodes draining too are no place to reconnect to (each marked itself as its drain began: `markDraining`), so this
      // node holds nothing when no other node serves — or when that cannot be read (as without a grace).
      othersServe().then(
        (serve) => {
          if (!serve) g.end();
        },
        () => g.end(),
      );
    },
    async settle() {
      // Every connection is gone: the leaves held by the drain are recorded once the grace is over (at once if none is).
      if (grace !== undefined) {
        if (grace.leaves.length === 0) grace.end();
        await grace.over;
        // Each caller's handler of its leave's outcome (its webhooks) runs before this wait ends: registered first.
        await Promise.race([Promise.allSettled(grace.recorded), delay(COMMAND_TIMEOUT_MS * 2)]);
      }
      await Promise.race([Promise.allSettled([...inflight]), delay(COMMAND_TIMEOUT_MS * 2)]);
      // The drain calls this once every connection is gone: the counts held back for this node's changes go out now, so
      // their webhooks leave before the sender closes (adapter.ts), not after, counted failed. Bounded like the rest.
      await Promise.race([membership.publishHeldCounts(), delay(COMMAND_TIMEOUT_MS * 2)]);
    },
    async reapOwn() {
      // Bounded so that the webhooks keep most of what is left of the drain's deadline to go out: the kept changes' wait,
      // then the reap (normally nothing left, one round trip). A Redis that does not answer holds it that long; one known
      // to be stalled is not asked (the survivors reap this node's share once its heartbeat key expires).
      if (stalls.some()) return;
      await Promise.race([reapOwnShare(), delay(COMMAND_TIMEOUT_MS * 2)]);
    },
    status: () => ({ adapter: 'redis', up: isUp(), pending: kept, congested: congested() }),
    shardDown: refusesPublishes,
    flush() {
      // Nothing published while down is waiting anywhere (it was dropped and counted); a lost marker is bounded by the caller.
      return isUp() ? markers.flush() : Promise.resolve();
    },
    ready: () => (isUp() ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    listening: () => interest.size,
    numbered: () => numbering.size,
    async close() {
      clearInterval(beat);
      clearInterval(generations);
      markers.cancel();
      // A Redis known to be stalled is not asked to remove this node's share: each write would wait out its timeout, and
      // the drain's deadline with them (a probe: exit 1, timed out). Survivors reap it once its heartbeat key expires.
      const stalled = stalls.some();
      stalls.closed();
      clearTimeout(retry);
      clearTimeout(redo);
      for (const later of shardRereads) clearTimeout(later);
      // Leaves still held by the drain's grace are recorded now (the node is going).
      grace?.end();
      // Leaves of the connections closed by the drain are recorded before the node goes; whatever share is still left
      // (a leave that could not be recorded) is removed like a dead node's, so no member outlives the node.
      await Promise.race([Promise.allSettled([...inflight]), delay(COMMAND_TIMEOUT_MS * 2)]);
      if (isUp() && !stalled) {
        const own = await reapOwnShare();
        // A share it could not remove (a Redis Cluster master down or not answering) stays listed, its key gone: a
        // survivor reaps the rest as a dead node's once that shard answers. Unlisted, nothing would ever find it.
        const unlist = own?.complete === true ? [pub.srem(keys.nodes, nodeId)] : [];
        await Promise.all([pub.del(keys.node(nodeId)), ...unlist, pub.del(keys.draining(nodeId))]).catch(() => undefined);
      }
      // The counts this node's last changes held back (the throttle of big channels) go out before it does.
      await membership.close();
      closed = true;
      // Failures not said yet are said now, those of the waits above included (their period's end would come too late).
      sayUnsaidFailures();
      for (const d of deferred.splice(0)) d.reject(new Error('adapter closed'));
      await link.quit();
      for (const w of waiters.splice(0)) w();
    },
  };
}

/** Calls `renew` when failures keep coming without a success for `ms` (at most once per streak). */
function failureStreak(ms: number, renew: () => void): { failed(): void; succeeded(): void } {
  let since: number | undefined;
  return {
    failed() {
      const t = performance.now();
      since ??= t;
      if (t - since < ms) return;
      since = undefined;
      renew();
    },
    succeeded() {
      since = undefined;
    },
  };
}

function subscriptionKey(appId: string, channel: string, socketId: string): string {
  return `${appId}\u0000${channel}\u0000${socketId}`;
}

/** True once `promise` settled, false if `ms` passed first. */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const settled = promise.then(
    () => true,
    () => true,
  );
  return Promise.race([settled, delay(ms).then(() => false)]);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
