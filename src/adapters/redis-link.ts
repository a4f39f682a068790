/**
 * The two connections of the Redis engine — commands and subscriptions — to one Redis (`REDIS_URL`) or to a Redis Cluster
 * (`REDIS_CLUSTER_NODES`). On a cluster, envelopes use sharded pub/sub (SSUBSCRIBE / SPUBLISH): a channel's events live
 * on the shard of its slot, which is also the slot of its keys (redis-keys.ts), so publications spread over the shards and
 * the scripts can SPUBLISH. The control channel stays classic pub/sub (it goes to every node).
 *
 * The subscriber can be renewed (`renewSubscriber`): ioredis 6.0.0's sharded subscriber group can hang for good when its
 * per-shard connections are stopped while connecting (it awaits a connect promise whose listeners it removed), after which
 * every SSUBSCRIBE fails. The engine replaces a subscriber that keeps failing to subscribe; listeners move with it.
 */
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { PubSubCommands } from './redis-interest.js';

/** Where the engine connects. */
export type RedisTarget = { url: string } | { clusterNodes: { host: string; port: number }[] };

/** What the engine hears from its connections. */
export interface LinkListener {
  /** A message of the subscriber, classic or sharded. */
  message(channel: string, message: string): void;
  /** The subscriber (re)connected and needs `resubscribe`. */
  subscriberReady(): void;
  /** A connection became ready. */
  ready(): void;
  /** A connection closed; `subscriber` says whether it was the subscriber. */
  closed(subscriber: boolean): void;
  error(err: Error): void;
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
}

function singleRedis(url: string, options: RedisOptions, nodeId: string): Shape {
  const pub = new Redis(url, { ...options, connectionName: `beacon-pub-${nodeId}` });
  return {
    pub,
    makeSub: () => new Redis(url, { ...options, connectionName: `beacon-sub-${nodeId}` }),
    publishCommand: 'PUBLISH',
    batches: true,
    subscribe: (sub, channels) => sub.subscribe(...channels),
    unsubscribe: (sub, channels) => sub.unsubscribe(...channels),
    publish: (channel, message) => pub.publish(channel, message),
    shardOf: () => 'redis',
    sharded: false,
  };
}

function redisCluster(nodes: { host: string; port: number }[], options: RedisOptions): Shape {
  const clusterOptions = {
    redisOptions: { ...options, autoResubscribe: true },
    enableOfflineQueue: false,
    clusterRetryStrategy: (times: number) => Math.min(times * 100, 1000),
    // The ready check (CLUSTER INFO) failing on a connection closed meanwhile makes ioredis tear the cluster client down
    // while its sharded subscribers are connecting — the path that hangs the subscriber group (see the top of this file).
    enableReadyCheck: false,
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
  };
}

export function createRedisLink(target: RedisTarget, options: RedisOptions, nodeId: string): RedisLink {
  const shape = 'url' in target ? singleRedis(target.url, options, nodeId) : redisCluster(target.clusterNodes, options);
  const { pub } = shape;
  let sub = shape.makeSub();
  let listener: LinkListener | undefined;

  const wire = (client: Redis | Cluster, subscriber: boolean): void => {
    client.on('ready', () => {
      listener?.ready();
      if (subscriber) listener?.subscriberReady();
    });
    client.on('close', () => listener?.closed(subscriber));
    // Errors surface as `close` and failed commands; this listener keeps ioredis from reporting them as unhandled.
    client.on('error', (err: Error) => listener?.error(err));
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
      listener?.closed(true);
    },
    ready: () => pub.status === 'ready' && sub.status === 'ready',
    quit: async () => {
      await Promise.all([quit(pub), quit(sub)]);
    },
  };
}

/** QUIT when connected (pending replies arrive first), otherwise stop reconnecting at once. */
async function quit(client: Redis | Cluster): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
  else client.disconnect();
}
