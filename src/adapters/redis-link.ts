/**
 * The two connections of the Redis engine — commands and subscriptions — to one Redis (`REDIS_URL`, or the master its
 * Sentinels name: `REDIS_SENTINELS`) or to a Redis Cluster (`REDIS_CLUSTER_NODES`). On a cluster, envelopes use sharded
 * pub/sub (SSUBSCRIBE / SPUBLISH): a channel's events live on the shard of its slot, which is also the slot of its keys
 * (redis-keys.ts), so publications spread over the shards and the scripts can SPUBLISH. The control channel stays classic
 * pub/sub (it goes to every node).
 *
 * The subscriber can be renewed (`renewSubscriber`): ioredis 6.0.0's sharded subscriber group can hang for good when its
 * per-shard connections are stopped while connecting (it awaits a connect promise whose listeners it removed), after which
 * every SSUBSCRIBE fails. The engine replaces a subscriber that keeps failing to subscribe; listeners move with it.
 *
 * On a cluster one master can be down while the others serve: the engine is up, but what goes to that shard is lost. The
 * link follows each master's connection (`shardDown`) so the HTTP API can refuse publishes to it instead (shardWatch).
 */
import type { Socket } from 'node:net';
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import './ioredis-socket-errors.js';
import type { PubSubCommands } from './redis-interest.js';

/** Where the engine connects. */
export type RedisTarget =
  | { url: string }
  | { clusterNodes: { host: string; port: number }[] }
  | {
      sentinels: { host: string; port: number }[];
      master: string;
      /** The Sentinels' own ACL user and password (their `user` / `requirepass`), when they ask for them. */
      sentinelUsername?: string | undefined;
      sentinelPassword?: string | undefined;
    };

/** What the engine hears from its connections. */
export interface LinkListener {
  /** A message of the subscriber, classic or sharded. */
  message(channel: string, message: string): void;
  /** The subscriber (re)connected and needs `resubscribe`. */
  subscriberReady(): void;
  /** A connection became ready. */
  ready(): void;
  /**
   * A connection closed; `subscriber` says whether it was the subscriber, `reason` what failed on it since it was last
   * ready (a refused password, an untrusted certificate), when anything was said.
   */
  closed(subscriber: boolean, reason: string | undefined): void;
  /** What failed: the error's message, or on a Cluster the last node's error behind "Failed to refresh slots cache". */
  error(reason: string): void;
  /** A Redis Cluster master's connection closed (its shard is down while the engine may be up); `shard` is its node key. */
  shardDown(shard: string): void;
  /** That master's connection is ready again, or its slots are served by another node, after `downForMs`. */
  shardUp(shard: string, downForMs: number): void;
  /**
   * Listening to a Sentinel (`host:port`) for the master's switch was refused with `error` (its user lacks a permission, a
   * wrong password), tried again every few seconds; `error` undefined: it listens again after such a refusal.
   */
  sentinelWatch(sentinel: string, error: string | undefined): void;
}

export interface RedisLink {
  /** Commands and scripts. */
  readonly commands: Redis | Cluster;
  /** `PUBLISH` or `SPUBLISH`, for the scripts. */
  readonly publishCommand: 'PUBLISH' | 'SPUBLISH';
  /** Subscribes and unsubscribes event channels (interest routing). */
  readonly events: PubSubCommands;
  publish(channel: string, message: string): Promise<unknown>;
  /** Bytes of commands written to the command connection(s) and not yet taken by the kernel: what a stalled Redis holds back. */
  backlog(): number;
  /** The shard serving an event channel (one Redis: always the same). */
  shardOf(channel: string): string;
  /** Whether any shard is down (`shardDown`); one Redis: never. Lets a caller skip building channel names. */
  someShardDown(): boolean;
  /**
   * Whether the shard serving an event channel is down: on a Redis Cluster, its master's connection closed and has not been
   * ready since. One Redis: never (its outage is the whole engine's: `ready`). A slot and a map lookup, no I/O.
   */
  shardDown(channel: string): boolean;
  /** After a (re)connection: the control channel plus every event channel this node listens to. */
  resubscribe(control: string, channels: readonly string[]): Promise<unknown>;
  /** Starts telling `listener` what happens (once, before anything else). */
  listen(listener: LinkListener): void;
  /** Replaces the subscriber connection by a new one (reported as closed, then ready again). */
  renewSubscriber(): void;
  ready(): boolean;
  quit(): Promise<void>;
}

/** How one kind of deployment (one Redis, a Redis Cluster) connects, publishes and subscribes. */
interface Shape {
  pub: Redis | Cluster;
  makeSub(): Redis | Cluster;
  publishCommand: 'PUBLISH' | 'SPUBLISH';
  /** True when one SUBSCRIBE may carry channels of different slots. */
  batches: boolean;
  subscribe(sub: Redis | Cluster, channels: readonly string[]): Promise<unknown>;
  unsubscribe(sub: Redis | Cluster, channels: readonly string[]): Promise<unknown>;
  publish(channel: string, message: string): Promise<unknown>;
  shardOf(channel: string): string;
  /** Sharded messages arrive as `smessage`. */
  sharded: boolean;
  shards: ShardWatch;
}

/** The masters that are down (shardWatch); one Redis has none. */
interface ShardWatch {
  some(): boolean;
  down(channel: string): boolean;
  stop(): void;
}

/** What a shard's transitions are told to (the link's listener, once it has one). */
type ShardReport = { down(shard: string): void; up(shard: string, downForMs: number): void };

/** How often a down master is tried again: once the API refuses its publishes, nothing else may send it a command. */
const SHARD_PROBE_MS = 1000;

/**
 * The masters of a Redis Cluster that are down, by node key (`host:port`, as in the client's slot map). ioredis drops a
 * lost node's connection and makes a new lazy one at each slot refresh, which connects only once a command goes to it: a
 * master whose connection is not ready at this moment may merely be one nobody has used yet. So a close marks a master
 * down and only a ready marks it up again — or a slot map in which it serves no slot any more (a replica promoted in its
 * place, its slots moved). While one is down, every SHARD_PROBE_MS the slot map is refreshed and the lazy connections of
 * the down masters connect, so a master back is seen even when nothing else talks to it. A master that stops answering
 * without closing its connection (a stall) is not seen here: its publishes time out and are counted as such.
 */
function shardWatch(pub: Cluster, report: ShardReport): ShardWatch {
  /** Node key → when its connection closed. */
  const down = new Map<string, number>();
  let probe: NodeJS.Timeout | undefined;
  let stopped = false;
  /**
   * The client has lost every node: the engine is down and `adapter_down` says it. Its masters' closes are not said
   * until it is ready again: each of its reconnections closed every master again, after the marks went with the
   * client's close, and said each again (a probe: 160–190 `adapter_shard_down` a minute with the password changed).
   */
  let clientDown = false;
  const nodeKey = (redis: Redis): string => `${redis.options.host}:${redis.options.port}`;
  const serves = (shard: string): boolean => pub.slots.some((owners) => owners?.[0] === shard);
  const up = (shard: string): void => {
    const since = down.get(shard);
    if (since === undefined) return;
    down.delete(shard);
    if (down.size === 0) {
      clearInterval(probe);
      probe = undefined;
    }
    report.up(shard, Math.round(performance.now() - since));
  };
  const probeShards = (): void =>
    pub.refreshSlotsCache(() => {
      for (const node of pub.nodes('master')) {
        if (node.status === 'wait' && down.has(nodeKey(node))) node.connect().catch(() => undefined);
      }
    });
  pub.on('+node', (redis: Redis) => {
    const shard = nodeKey(redis);
    redis.on('ready', () => up(shard));
    redis.on('close', () => {
      // A replica, or a node dropped because it serves no slot (resharding), is no shard of ours.
      if (stopped || clientDown || redis.options.readOnly === true || down.has(shard) || !serves(shard)) return;
      down.set(shard, performance.now());
      probe ??= setInterval(probeShards, SHARD_PROBE_MS);
      probe.unref();
      report.down(shard);
    });
  });
  pub.on('refresh', () => {
    for (const shard of down.keys()) if (!serves(shard)) up(shard);
  });
  // The client lost every node: the engine is down (the adapter says so, and refuses every publish). The shards' marks go
  // with it, unsaid: once it is back, a master it reaches is ready, and one it does not is marked again when that
  // connection closes. Kept, they would refuse a shard's publishes after `adapter_up` until the probe reached it.
  pub.on('ready', () => (clientDown = false));
  pub.on('close', () => {
    clientDown = true;
    down.clear();
    clearInterval(probe);
    probe = undefined;
  });
  return {
    some: () => down.size > 0,
    down(channel) {
      if (down.size === 0) return false;
      const shard = pub.slots[calculateSlot(channel)]?.[0];
      return shard !== undefined && down.has(shard);
    },
    stop() {
      stopped = true;
      clearInterval(probe);
    },
  };
}

/** A connection to one Redis, named (`CLIENT SETNAME`): by URL, or to the master Sentinels name. */
type Connect = (connectionName: string) => Redis;

function byUrl(url: string, options: RedisOptions): Connect {
  return (connectionName) => new Redis(url, { ...options, connectionName });
}

type SentinelTarget = Extract<RedisTarget, { sentinels: unknown }>;

/**
 * Through Sentinels: each connection asks them for the master's address, again on every reconnection, so after a failover
 * it reaches the promoted replica (and ioredis' ready check leaves a server that answers as a replica). A connection that
 * meets READONLY all the same (a master demoted under it) reconnects; `sentinelSwitches` makes that happen at once.
 */
function bySentinels(target: SentinelTarget, options: RedisOptions): Connect {
  return (connectionName) =>
    new Redis({
      ...options,
      connectionName,
      sentinels: target.sentinels,
      name: target.master,
      ...(target.sentinelUsername === undefined ? {} : { sentinelUsername: target.sentinelUsername }),
      ...(target.sentinelPassword === undefined ? {} : { sentinelPassword: target.sentinelPassword }),
      // The Sentinels' own connections: TLS as the engine's (`REDIS_TLS`), answered within the command timeout.
      ...(options.tls === undefined ? {} : { enableTLSForSentinelMode: true, sentinelTLS: options.tls }),
      sentinelCommandTimeout: options.commandTimeout,
      reconnectOnError: (err) => err.message.startsWith('READONLY'),
    });
}

/** How often a Sentinel that cannot be reached is tried again by the switch listener. */
const SENTINEL_WATCH_RETRY_MS = 5000;

/**
 * Listens to every Sentinel for the switch of `target.master` (`+switch-master <name> <old ip> <old port> <new ip> <new
 * port>`, announced by each Sentinel) and tells `switched` once per switch: a master demoted while still running (a
 * manual `SENTINEL FAILOVER`, a healed partition) keeps answering, and the engine's connections would stay on it. Not
 * ioredis' own `failoverDetector`: it disconnected a connection that was reconnecting (waiting on a Sentinel lookup),
 * which then ended for good (status `end`, never retried: a review, 8 of 8 connections), and took any master's switch
 * on shared Sentinels for this one's.
 */
function sentinelSwitches(
  target: SentinelTarget,
  options: RedisOptions,
  switched: (to: { host: string; port: number }) => void,
  refused: (sentinel: string, error: string | undefined) => void,
): { stop(): void } {
  let last: string | undefined;
  let stopped = false;
  const retries = new Set<NodeJS.Timeout>();
  const watchers = target.sentinels.map(({ host, port }) => {
    const sentinel = `${host}:${port}`;
    const watcher = new Redis({
      host,
      port,
      ...(target.sentinelUsername === undefined ? {} : { username: target.sentinelUsername }),
      ...(target.sentinelPassword === undefined ? {} : { password: target.sentinelPassword }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      retryStrategy: () => SENTINEL_WATCH_RETRY_MS,
      // A SUBSCRIBE sent while the Sentinel is away waits for it, however long.
      maxRetriesPerRequest: null,
      enableReadyCheck: false,
      // Subscribed again by `watch` at each `ready`, not by ioredis: its own resubscription leaves a refusal unhandled
      // (a Sentinel user that lost `&+switch-master` is disconnected by Redis 7, and refused on reconnection: the
      // process ended on the unhandled rejection — a review).
      autoResubscribe: false,
    });
    watcher.on('message', (_channel: string, message: string) => {
      const [name, , , host, port] = message.split(' ');
      if (name !== target.master || host === undefined || message === last) return;
      last = message;
      switched({ host, port: Number(port) });
    });
    // A Sentinel that refuses the SUBSCRIBE (its user without `&+switch-master`) or the connection (a wrong password) is
    // said, once per error, and asked again: dropped, the node stayed on a demoted master until a command met READONLY (a
    // probe: ~10 s after a `SENTINEL FAILOVER`, while a node that reconnected meanwhile was on the new one — the two
    // missed each other's publishes), and a refusal at start-up was never tried again once the Sentinel let it in. A
    // refused SUBSCRIBE is sent again every SENTINEL_WATCH_RETRY_MS; a refused connection is retried at that pace by
    // ioredis, and subscribes once it is ready. One SUBSCRIBE at a time.
    let failed: string | undefined;
    let pending = false;
    const fail = (error: string): void => {
      if (stopped) return;
      if (error !== failed) refused(sentinel, error);
      failed = error;
    };
    const watch = (): void => {
      if (pending || stopped) return;
      pending = true;
      watcher.subscribe('+switch-master').then(
        () => {
          pending = false;
          if (failed !== undefined && !stopped) refused(sentinel, undefined);
          failed = undefined;
        },
        (err: Error) => {
          pending = false;
          fail(err.message);
          if (stopped) return;
          const retry = setTimeout(() => {
            retries.delete(retry);
            watch();
          }, SENTINEL_WATCH_RETRY_MS);
          retries.add(retry);
        },
      );
    };
    watcher.on('ready', watch);
    // A refused AUTH never reaches `ready` (ioredis reconnects): said from here. Other errors (the Sentinel down, a reset)
    // are retried without a word, as at start.
    watcher.on('error', (err: Error) => {
      if (/^(WRONGPASS|NOAUTH|NOPERM)/.test(err.message)) fail(err.message);
    });
    return watcher;
  });
  return {
    stop: () => {
      stopped = true;
      for (const retry of retries) clearTimeout(retry);
      for (const watcher of watchers) watcher.disconnect();
    },
  };
}

function singleRedis(connect: Connect, nodeId: string): Shape {
  const pub = connect(`beacon-pub-${nodeId}`);
  return {
    pub,
    makeSub: () => connect(`beacon-sub-${nodeId}`),
    publishCommand: 'PUBLISH',
    batches: true,
    subscribe: (sub, channels) => sub.subscribe(...channels),
    unsubscribe: (sub, channels) => sub.unsubscribe(...channels),
    publish: (channel, message) => pub.publish(channel, message),
    shardOf: () => 'redis',
    sharded: false,
    shards: { some: () => false, down: () => false, stop: () => undefined },
  };
}

function redisCluster(nodes: { host: string; port: number }[], options: RedisOptions, report: ShardReport): Shape {
  const clusterOptions = {
    redisOptions: { ...options, autoResubscribe: true },
    enableOfflineQueue: false,
    // No command is parked inside ioredis to be sent again later: with its defaults (100 ms, up to 16 times) a command
    // answered CLUSTERDOWN, or cut by its connection closing, went into the client's delay queue, and its commandTimeout
    // rejected the caller without taking it out. Sent after the caller gave up, it ran after what the caller sent next: a
    // timed-out join script ran after its take-back (a master killed and restarted empty, a probe: the member and the
    // subscription stayed in Redis for good, unlisted from the node's channels so no reap found them). The engine sends
    // joins, leaves and resubscriptions again itself, in order; a publish so refused is dropped and counted `error` (at
    // most once, never late). TRYAGAIN still goes through the queue, at 0 ms (docs/scaling.md).
    retryDelayOnClusterDown: 0,
    retryDelayOnTryAgain: 0,
    retryDelayOnFailover: 0,
    clusterRetryStrategy: (times: number) => Math.min(times * 100, 1000),
    // The ready check (CLUSTER INFO) failing on a connection closed meanwhile makes ioredis tear the cluster client down
    // while its sharded subscribers are connecting — the path that hangs the subscriber group (see the top of this file).
    enableReadyCheck: false,
    // With TLS each node is reached by the name it is known by, as its certificate names it: the client resolved a seed's
    // host name to an address first and checked the certificate against that address (a managed cluster's certificate
    // names hosts; its slot map announces them, Redis' `cluster-preferred-endpoint-type hostname`).
    ...(options.tls === undefined ? {} : { dnsLookup: (host: string, found: (err: null, address: string) => void) => found(null, host) }),
  };
  const pub = new Cluster(nodes, clusterOptions);
  return {
    pub,
    makeSub: () => new Cluster(nodes, { ...clusterOptions, shardedSubscribers: true }),
    publishCommand: 'SPUBLISH',
    batches: false,
    // A sharded SUBSCRIBE may not cross slots: one command per channel.
    subscribe: (sub, channels) => Promise.all(channels.map((c) => sub.ssubscribe(c))),
    unsubscribe: (sub, channels) => Promise.all(channels.map((c) => sub.sunsubscribe(c))),
    publish: (channel, message) => pub.spublish(channel, message),
    shardOf: (channel) => {
      const slot = calculateSlot(channel);
      return (pub as Cluster).slots[slot]?.[0] ?? `slot ${slot}`;
    },
    sharded: true,
    shards: shardWatch(pub, report),
  };
}

/** Said with a connect that timed out with TLS on. */
const UNANSWERED_TLS =
  ' (TLS is on — REDIS_TLS=true or a rediss:// URL — and nothing answered the handshake: is the host unreachable, or does this Redis not speak TLS on this port?)';

export function createRedisLink(target: RedisTarget, options: RedisOptions, nodeId: string): RedisLink {
  let listener: LinkListener | undefined;
  const report: ShardReport = { down: (shard) => listener?.shardDown(shard), up: (shard, ms) => listener?.shardUp(shard, ms) };
  const shape =
    'clusterNodes' in target
      ? redisCluster(target.clusterNodes, options, report)
      : singleRedis('url' in target ? byUrl(target.url, options) : bySentinels(target, options), nodeId);
  const { pub } = shape;
  let sub = shape.makeSub();
  // A switch seen: the connections that are up and not on the new master leave (they reconnect through the Sentinels).
  // Those already there stay: after a master died the nodes reconnect as soon as a Sentinel names the new one, and the
  // switch, announced by each Sentinel as it learns it, came after (a probe: a second outage per failover on every node).
  const switches =
    'sentinels' in target
      ? sentinelSwitches(target, options, (to) => {
          for (const client of [pub, sub] as Redis[]) {
            if (client.status !== 'ready') continue;
            const socket = client.stream as Socket | undefined;
            const at = socket?.remoteAddress?.replace(/^::ffff:/, '');
            if (at === to.host && socket?.remotePort === to.port) continue;
            client.disconnect(true);
          }
        }, (sentinel, error) => listener?.sentinelWatch(sentinel, error))
      : undefined;

  const wire = (client: Redis | Cluster, subscriber: boolean): void => {
    /** The last failure since the client was ready: a Cluster said only "connection closed" for a refused password. */
    let failure: string | undefined;
    const tls = (client instanceof Cluster ? client.options.redisOptions?.tls : client.options.tls) !== undefined;
    const withTlsHint = (message: string): string => (tls && message.includes('ETIMEDOUT') ? message + UNANSWERED_TLS : message);
    client.on('ready', () => {
      failure = undefined;
      listener?.ready();
      if (subscriber) listener?.subscriberReady();
    });
    client.on('close', () => listener?.closed(subscriber, failure));
    // Errors surface as `close` and failed commands; this listener keeps ioredis from reporting them as unhandled.
    client.on('error', (err: Error & { lastNodeError?: Error; command?: { name?: string } }) => {
      failure = err.lastNodeError === undefined ? err.message : `${err.message} (last node: ${err.lastNodeError.message})`;
      if (err.command?.name === 'select' && client instanceof Redis) {
        // ioredis answers a database the server refuses (past its `databases`) with this event and goes on, on database
        // 0: the engine's keys landed there, beside whatever lives in it (a review). The connection is dropped instead,
        // tried again as any failed one, and the engine stays down saying why.
        failure = `REDIS_URL selects database ${String(client.options.db)}, which this Redis refuses (${err.message})`;
        client.disconnect(true);
      }
      // A Redis without TLS takes the ClientHello for the start of an inline command and waits for its end: the only
      // sign is the connect timing out.
      failure = withTlsHint(failure);
      listener?.error(failure);
    });
    // A Cluster's node connections fail on their own (AUTH, TLS): what the client then says is only that it closed.
    if (client instanceof Cluster) client.on('node error', (err: Error) => (failure = withTlsHint(err.message)));
    // Through Sentinels: what each one answered (a master name it does not know, its password refused).
    else client.on('sentinelError', (err: Error) => (failure = err.message));
    if (subscriber) {
      client.on('message', (channel: string, message: string) => listener?.message(channel, message));
      if (shape.sharded) client.on('smessage', (channel: string, message: string) => listener?.message(channel, message));
    }
  };
  wire(pub, false);
  wire(sub, true);

  return {
    commands: pub,
    publishCommand: shape.publishCommand,
    events: {
      subscribe: (channels) => shape.subscribe(sub, channels),
      unsubscribe: (channels) => shape.unsubscribe(sub, channels),
      batches: shape.batches,
    },
    publish: shape.publish,
    backlog: () => {
      if (pub instanceof Redis) return pub.stream?.writableLength ?? 0;
      let bytes = 0;
      for (const node of pub.nodes('master')) bytes += node.stream?.writableLength ?? 0;
      return bytes;
    },
    shardOf: shape.shardOf,
    someShardDown: shape.shards.some,
    shardDown: shape.shards.down,
    resubscribe: async (control, channels) => {
      await sub.subscribe(control);
      if (channels.length > 0) await shape.subscribe(sub, channels);
    },
    listen(l) {
      listener = l;
    },
    renewSubscriber() {
      const old = sub;
      old.removeAllListeners();
      old.on('error', () => undefined);
      old.disconnect();
      sub = shape.makeSub();
      wire(sub, true);
      listener?.closed(true, undefined);
    },
    ready: () => pub.status === 'ready' && sub.status === 'ready',
    quit: async () => {
      shape.shards.stop();
      switches?.stop();
      await Promise.all([quit(pub), quit(sub)]);
    },
  };
}

/** QUIT when connected (pending replies arrive first), otherwise stop reconnecting at once. */
async function quit(client: Redis | Cluster): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(() => undefined);
  // After QUIT too: only `disconnect` stops what a connector runs beside the connection (ioredis' Sentinel failover
  // listener, while it was used, went on reconnecting after the engine closed).
  client.disconnect();
}
