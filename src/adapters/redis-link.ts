/**
 * The two connections of the Redis engine — commands and subscriptions — to one Redis (`REDIS_URL`) or to a Redis Cluster
 * (`REDIS_CLUSTER_NODES`). On a cluster, envelopes use sharded pub/sub (SSUBSCRIBE / SPUBLISH): a channel's events live
 * on the shard of its slot, which is also the slot of its keys (redis-keys.ts), so publications spread over the shards and
 * the scripts can SPUBLISH. The control channel stays classic pub/sub (it goes to every node).
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { PubSubCommands } from './redis-interest.js';

/** Where the engine connects. */
export type RedisTarget = { url: string } | { clusterNodes: { host: string; port: number }[] };

export interface RedisLink {
  /** Commands and scripts. */
  readonly commands: Redis | Cluster;
  /** Every client whose status makes the engine up or down. */
  readonly clients: readonly (Redis | Cluster)[];
  /** `PUBLISH` or `SPUBLISH`, for the scripts. */
  readonly publishCommand: 'PUBLISH' | 'SPUBLISH';
  /** Subscribes and unsubscribes event channels (interest routing). */
  readonly events: PubSubCommands;
  publish(channel: string, message: string): Promise<unknown>;
  /** After a (re)connection: the control channel plus every event channel this node listens to. */
  resubscribe(control: string, channels: readonly string[]): Promise<unknown>;
  /** Every message of the subscriber, classic or sharded. */
  onMessage(handler: (channel: string, message: string) => void): void;
  /** Fires when the subscriber (re)connected and needs `resubscribe`. */
  onSubscriberReady(handler: () => void): void;
  isSubscriber(client: Redis | Cluster): boolean;
  ready(): boolean;
  quit(): Promise<void>;
}

export function createRedisLink(target: RedisTarget, options: RedisOptions, nodeId: string): RedisLink {
  if ('url' in target) {
    const pub = new Redis(target.url, { ...options, connectionName: `beacon-pub-${nodeId}` });
    const sub = new Redis(target.url, { ...options, connectionName: `beacon-sub-${nodeId}` });
    return {
      commands: pub,
      clients: [pub, sub],
      publishCommand: 'PUBLISH',
      events: { subscribe: (c) => sub.subscribe(...c), unsubscribe: (c) => sub.unsubscribe(...c), batches: true },
      publish: (channel, message) => pub.publish(channel, message),
      resubscribe: (control, channels) => sub.subscribe(control, ...channels),
      onMessage: (handler) => sub.on('message', handler),
      onSubscriberReady: (handler) => sub.on('ready', handler),
      isSubscriber: (client) => client === sub,
      ready: () => pub.status === 'ready' && sub.status === 'ready',
      quit: async () => {
        await Promise.all([quit(pub), quit(sub)]);
      },
    };
  }
  const clusterOptions = {
    redisOptions: { ...options, autoResubscribe: true },
    enableOfflineQueue: false,
    clusterRetryStrategy: (times: number) => Math.min(times * 100, 1000),
  };
  const pub = new Cluster(target.clusterNodes, clusterOptions);
  const sub = new Cluster(target.clusterNodes, { ...clusterOptions, shardedSubscribers: true });
  const ssubscribe = (channels: readonly string[]): Promise<unknown> => Promise.all(channels.map((c) => sub.ssubscribe(c)));
  return {
    commands: pub,
    clients: [pub, sub],
    publishCommand: 'SPUBLISH',
    events: {
      subscribe: ssubscribe,
      unsubscribe: (channels) => Promise.all(channels.map((c) => sub.sunsubscribe(c))),
      batches: false,
    },
    publish: (channel, message) => pub.spublish(channel, message),
    resubscribe: async (control, channels) => {
      await sub.subscribe(control);
      await ssubscribe(channels);
    },
    onMessage: (handler) => {
      sub.on('message', handler);
      sub.on('smessage', handler);
    },
    onSubscriberReady: (handler) => sub.on('ready', handler),
    isSubscriber: (client) => client === sub,
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
