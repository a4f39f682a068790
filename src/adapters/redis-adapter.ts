/**
 * The Redis cluster engine (`ADAPTER=redis`): every node of a cluster connects to one Redis with two connections, one
 * to send commands and one subscribed to pub/sub.
 *
 * Publications: one pub/sub channel per app (`{prefix}:{appId}:events`) carries the Envelope as JSON, trace context
 * inside. Every node, this one included, receives through its subscriber and calls the envelope handler, so a
 * publication follows one path whether it started here or elsewhere. Redis delivers the messages of one connection in
 * order, which gives the per-channel ordering of the contract.
 *
 * Queries (`channels`, `channel`, `members`) are request/response over pub/sub, not a copy of the hubs in Redis: the
 * requester publishes the question on the control channel, every other live node answers from its own hub on the
 * requester's reply channel, and the requester merges those answers with its own until every live node has answered or
 * QUERY_TIMEOUT_MS passed. Chosen because the hub stays the only source of truth: there is no second copy to keep in step
 * on every subscribe, nothing to clean up after a crash, and a join is visible to the next query at once (a periodically
 * written copy would let a presence subscriber miss a member that joined a moment before on another node).
 * Liveness: each node refreshes its key `{prefix}:node:{id}` (TTL nodeTtlMs) every third of the TTL and lists itself
 * in the set `{prefix}:nodes`; a query waits only for nodes whose key still exists. A crashed node answers nothing and
 * its key expires, so its presence members are in no answer: no ghost members, and a query never waits more than the
 * timeout for it.
 *
 * `terminateUser` goes on the control channel to every node (this one included). The cache is `SET key value PX ttl`.
 *
 * `flush()` publishes a marker on this node's reply channel through the same connection as the envelopes and waits for it
 * to come back: Redis runs one connection's commands in order and pushes messages to a subscriber in that order, so every
 * envelope published before the marker has reached this node's envelope handler by then.
 *
 * Failure: the command connection has no offline queue, so while Redis is down nothing is buffered; `publish` drops
 * (counted in `websocket_adapter_dropped_total` by reason, and the count is logged with the next `adapter_up`), queries
 * answer from this node's hub alone, the cache misses,
 * and `status().up` is false so `/readyz` answers 503. `adapter_down` and `adapter_up` are logged once per transition.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Hub } from '../realtime/hub.js';
import type { Logger } from '../telemetry/logger.js';
import type { AdapterOp, Metrics } from '../telemetry/metrics.js';
import type { Adapter, CachedEvent } from './adapter.js';
import type { Envelope } from './envelope.js';
import { decodeEnvelope, encodeEnvelope } from './envelope-codec.js';
import { answerFromHub, mergeChannel, mergeChannels, mergeMembers, type NodeAnswer, type QueryOp } from './redis-queries.js';

/** How long a query waits for the other live nodes before answering with what it has. */
const QUERY_TIMEOUT_MS = 500;
/** Reconnection back-off: 100 ms more per attempt, at most one second, forever. */
const RETRY_STEP_MS = 100;
const RETRY_MAX_MS = 1000;
/** A command that got no answer in this time fails (a stalled Redis must not stall publishes or queries). */
const COMMAND_TIMEOUT_MS = 1000;

export interface RedisAdapterOptions {
  hub: Hub;
  metrics: Pick<Metrics, 'adapterMessage' | 'adapterRequest' | 'adapterDropped'>;
  logger: Pick<Logger, 'info' | 'warn'>;
  url: string;
  /** The configured node id; a random suffix makes two processes with the same id distinct in the cluster. */
  nodeId: string;
  /** Apps whose publications this node receives (one pub/sub channel each). */
  appIds: readonly string[];
  cacheTtlMs: number;
  /** Prefix of every key and channel, so several clusters (or tests) can share one Redis. */
  prefix?: string;
  /** A node whose heartbeat is older than this is dead for queries. */
  nodeTtlMs?: number;
  now?: () => number;
}

/** The Redis adapter, plus `ready()` for callers that want to wait for the first connection (tests, start-up probes). */
export interface RedisAdapter extends Adapter {
  /** Resolves once both connections are up and subscribed; never rejects (the adapter keeps reconnecting). */
  ready(): Promise<void>;
}

type ControlMessage =
  | { type: 'query'; id: string; from: string; appId: string; op: QueryOp; channel: string }
  | { type: 'reply'; id: string; from: string; answer: NodeAnswer }
  | { type: 'terminate'; appId: string; userId: string }
  | { type: 'flush'; id: string };

interface PendingQuery {
  waiting: Set<string>;
  answers: NodeAnswer[];
  finish: () => void;
}

/** Lists live nodes and forgets dead ones, in one round trip. KEYS[1] = the node set, ARGV[1] = the node key prefix. */
const LIVE_NODES_LUA = `
local live = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. id) == 1 then table.insert(live, id) else redis.call('SREM', KEYS[1], id) end
end
return live`;

export function createRedisAdapter(options: RedisAdapterOptions): RedisAdapter {
  const { hub, metrics, logger, appIds, cacheTtlMs, prefix = 'beacon', nodeTtlMs = 5000, now = Date.now } = options;
  const nodeId = `${options.nodeId}:${randomBytes(4).toString('hex')}`;
  const control = `${prefix}:control`;
  const replies = `${prefix}:reply:${nodeId}`;
  const nodesKey = `${prefix}:nodes`;
  const nodeKeyPrefix = `${prefix}:node:`;
  const eventsChannel = (appId: string): string => `${prefix}:${appId}:events`;
  const cacheKey = (appId: string, channel: string): string => `${prefix}:${appId}:cache:${channel}`;
  const connection = {
    retryStrategy: (times: number) => Math.min(times * RETRY_STEP_MS, RETRY_MAX_MS),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: COMMAND_TIMEOUT_MS,
    // Resubscribing is done here on every `ready`, so `up` becomes true only once the subscriptions are back.
    autoResubscribe: false,
    lazyConnect: false,
  };
  const pub = new Redis(options.url, { ...connection, connectionName: `beacon-pub-${nodeId}` });
  const sub = new Redis(options.url, { ...connection, connectionName: `beacon-sub-${nodeId}` });

  let deliver: (envelope: Envelope) => void = () => {};
  let terminate: (appId: string, userId: string) => void = () => {};
  const pending = new Map<string, PendingQuery>();
  let subscribed = false;
  let state: 'starting' | 'up' | 'down' = 'starting';
  let dropped = 0;
  let closed = false;
  const waiters: (() => void)[] = [];
  /** Flush markers in flight: id → resolve. */
  const flushes = new Map<string, () => void>();

  const isUp = (): boolean => !closed && subscribed && pub.status === 'ready' && sub.status === 'ready';
  const refresh = (reason?: string): void => {
    if (isUp() && state !== 'up') {
      state = 'up';
      logger.info({ event: 'adapter_up', adapter: 'redis', node: nodeId, dropped_while_down: dropped }, 'cluster engine up');
      dropped = 0;
      heartbeat();
      for (const w of waiters.splice(0)) w();
    } else if (!isUp() && !closed && (state === 'up' || (state === 'starting' && reason !== undefined))) {
      // Before the first `ready` a connection that is merely still connecting is not "down"; a failure is.
      state = 'down';
      logger.warn({ event: 'adapter_down', adapter: 'redis', node: nodeId, reason }, 'cluster engine down');
    }
  };

  const heartbeat = (): void => {
    if (!isUp()) return;
    pub
      .multi()
      .set(nodeKeyPrefix + nodeId, '1', 'PX', nodeTtlMs)
      .sadd(nodesKey, nodeId)
      .exec()
      .catch(() => undefined);
  };
  const beat = setInterval(heartbeat, Math.max(100, Math.floor(nodeTtlMs / 3)));
  beat.unref();

  sub.on('ready', () => {
    sub
      .subscribe(control, replies, ...appIds.map(eventsChannel))
      .then(() => {
        subscribed = true;
        refresh();
      })
      .catch((err: Error) => refresh(err.message));
  });
  for (const client of [pub, sub]) {
    client.on('ready', () => refresh());
    client.on('close', () => {
      if (client === sub) subscribed = false;
      refresh('connection closed');
    });
    // Errors surface as `close` and failed commands; this listener keeps ioredis from reporting them as unhandled.
    client.on('error', (err: Error) => refresh(err.message));
  }

  sub.on('message', (channel: string, message: string) => {
    if (channel === control || channel === replies) onControl(message);
    else onEnvelopeMessage(message);
  });

  function onEnvelopeMessage(message: string): void {
    const envelope = decodeEnvelope(message);
    if (envelope === undefined) return;
    metrics.adapterMessage('received');
    deliver(envelope);
  }

  function onControl(message: string): void {
    let m: ControlMessage;
    try {
      m = JSON.parse(message) as ControlMessage;
    } catch {
      return;
    }
    if (m.type === 'terminate') {
      terminate(m.appId, m.userId);
    } else if (m.type === 'flush') {
      flushes.get(m.id)?.();
    } else if (m.type === 'query') {
      if (m.from === nodeId) return;
      const reply: ControlMessage = { type: 'reply', id: m.id, from: nodeId, answer: answerFromHub(hub, m.appId, m.op, m.channel) };
      pub.publish(`${prefix}:reply:${m.from}`, JSON.stringify(reply)).catch(() => undefined);
    } else if (m.type === 'reply') {
      const query = pending.get(m.id);
      if (query === undefined || !query.waiting.delete(m.from)) return;
      query.answers.push(m.answer);
      if (query.waiting.size === 0) query.finish();
    }
  }

  async function liveNodes(): Promise<string[]> {
    const result: unknown = await pub.eval(LIVE_NODES_LUA, 1, nodesKey, nodeKeyPrefix);
    return Array.isArray(result) ? result.filter((x): x is string => typeof x === 'string') : [];
  }

  /** This node's answer plus those of every other live node that answered within the timeout. */
  async function ask(appId: string, op: QueryOp, channel: string): Promise<NodeAnswer[]> {
    const local = answerFromHub(hub, appId, op, channel);
    if (!isUp()) return [local];
    let others: string[];
    try {
      others = (await liveNodes()).filter((id) => id !== nodeId);
    } catch {
      return [local];
    }
    if (others.length === 0) return [local];
    const id = randomUUID();
    return new Promise<NodeAnswer[]>((resolve) => {
      const query: PendingQuery = {
        waiting: new Set(others),
        answers: [local],
        finish: () => {
          clearTimeout(timer);
          pending.delete(id);
          resolve(query.answers);
        },
      };
      const timer = setTimeout(query.finish, QUERY_TIMEOUT_MS);
      pending.set(id, query);
      const request: ControlMessage = { type: 'query', id, from: nodeId, appId, op, channel };
      pub.publish(control, JSON.stringify(request)).catch(query.finish);
    });
  }

  async function timed<T>(op: AdapterOp, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await run();
    } finally {
      metrics.adapterRequest(op, (performance.now() - started) / 1000);
    }
  }

  return {
    name: 'redis',
    onEnvelope(handler) {
      deliver = handler;
    },
    onTerminateUser(handler) {
      terminate = handler;
    },
    publish(envelope) {
      if (!isUp()) {
        dropped++;
        metrics.adapterDropped('down');
        return;
      }
      metrics.adapterMessage('published');
      pub.publish(eventsChannel(envelope.appId), encodeEnvelope(envelope)).catch(() => {
        dropped++;
        metrics.adapterDropped('error');
      });
    },
    channels: (appId) => timed('channels', async () => mergeChannels(await ask(appId, 'channels', ''))),
    channel: (appId, name) => timed('counts', async () => mergeChannel(await ask(appId, 'channel', name))),
    members: (appId, name) => timed('members', async () => mergeMembers(await ask(appId, 'members', name))),
    async cacheGet(appId, channel) {
      if (!isUp()) return undefined;
      const raw = await pub.get(cacheKey(appId, channel)).catch(() => null);
      if (raw === null) return undefined;
      const stored = JSON.parse(raw) as CachedEvent & { expiresAt: number };
      // The expiry is also checked against this node's clock, so an injected clock (tests) governs it like PX does.
      return stored.expiresAt > now() ? { event: stored.event, data: stored.data } : undefined;
    },
    cacheSet(appId, channel, event) {
      if (!isUp()) return;
      const value = JSON.stringify({ event: event.event, data: event.data, expiresAt: now() + cacheTtlMs });
      pub.set(cacheKey(appId, channel), value, 'PX', cacheTtlMs).catch(() => undefined);
    },
    terminateUser(appId, userId) {
      if (!isUp()) return;
      const message: ControlMessage = { type: 'terminate', appId, userId };
      pub.publish(control, JSON.stringify(message)).catch(() => undefined);
    },
    status: () => ({ adapter: 'redis', up: isUp() }),
    flush() {
      // Nothing published while down is waiting anywhere (it was dropped and counted); a lost marker is bounded by the caller.
      if (!isUp()) return Promise.resolve();
      const id = randomUUID();
      return new Promise<void>((resolve) => {
        const done = (): void => {
          flushes.delete(id);
          resolve();
        };
        flushes.set(id, done);
        const marker: ControlMessage = { type: 'flush', id };
        pub.publish(replies, JSON.stringify(marker)).catch(done);
      });
    },
    ready: () => (isUp() ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    async close() {
      clearInterval(beat);
      for (const query of [...pending.values()]) query.finish();
      for (const done of [...flushes.values()]) done();
      if (pub.status === 'ready') {
        await pub
          .multi()
          .del(nodeKeyPrefix + nodeId)
          .srem(nodesKey, nodeId)
          .exec()
          .catch(() => undefined);
      }
      closed = true;
      await Promise.all([quit(pub), quit(sub)]);
      for (const w of waiters.splice(0)) w();
    },
  };
}

/** QUIT when connected (pending replies arrive first), otherwise stop reconnecting at once. */
async function quit(client: Redis): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
  else client.disconnect();
}
