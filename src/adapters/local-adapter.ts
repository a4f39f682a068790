/**
 * The embedded single-node engine: delivery is a direct call; membership and queries are kept in memory by the same rules
 * the Redis engine applies in Redis (memory-membership.ts), since one node is the whole cluster.
 */
import { createEventCache } from '../realtime/event-cache.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Adapter, CachedEvent, ChannelCounts } from './adapter.js';
import type { Envelope } from './envelope.js';
import { MemoryMembership } from './memory-membership.js';

export interface LocalAdapterOptions {
  metrics: Pick<Metrics, 'adapterMessage' | 'adapterRequest'>;
  /** How long a cache channel keeps its last event (Pusher: 30 minutes). */
  cacheTtlMs: number;
  /** Bytes of cache-channel events kept (CACHE_MAX_BYTES); least recently used evicted past it. */
  cacheMaxBytes: number;
  /** Told for each cache event evicted for room (websocket_cache_evictions_total). */
  onCacheEvicted?: (appId: string) => void;
  /** Whether an app gets `pusher_internal:subscription_count` (its opt-in setting); omitted: every app does. */
  countsSubscriptions?: (appId: string) => boolean;
  now?: () => number;
}

/**
 * Local delivery is one hop, but it is counted like a cluster engine's (`published` then `received`) and its queries are
 * timed, so dashboards read the same on one node and on many.
 */
export function createLocalAdapter(options: LocalAdapterOptions): Adapter {
  const { metrics, cacheTtlMs, now = Date.now } = options;
  let deliver: (envelope: Envelope) => void = () => {};
  let terminate: (appId: string, userId: string) => void = () => {};
  const cache = createEventCache({
    maxBytes: options.cacheMaxBytes,
    ttlMs: cacheTtlMs,
    onEvicted: options.onCacheEvicted ?? (() => {}),
    now,
  });
  /** `appId \0 userId` of the users signed in (this node is the cluster). */
  const online = new Set<string>();
  let userPresence: (appId: string, userId: string, online: boolean) => void = () => {};
  let countPublished: (appId: string, channel: string, count: number) => void = () => {};
  /** Connections counted per app by `reserveConnection`. */
  const connections = new Map<string, number>();

  const membership = new MemoryMembership((envelope) => {
    metrics.adapterMessage('published');
    metrics.adapterMessage('received');
    deliver(envelope);
  }, options.countsSubscriptions, (appId, channel, count) => countPublished(appId, channel, count));
  const counts = (appId: string, name: string): ChannelCounts => membership.counts(appId, name);

  return {
    name: 'local',
    onEnvelope(handler) {
      deliver = handler;
    },
    onTerminateUser(handler) {
      terminate = handler;
    },
    publish(envelope, cached) {
      if (cached !== undefined) cache.set(envelope.appId, envelope.channel, cached);
      metrics.adapterMessage('published');
      metrics.adapterMessage('received');
      deliver(envelope);
      return undefined;
    },
    async join(appId, channel, socketId, member, maxMembers) {
      return membership.join(appId, channel, socketId, member, maxMembers);
    },
    async leave(appId, channel, _socketId, member) {
      return membership.leave(appId, channel, member);
    },
    async reserveConnection(appId, max, _id) {
      const n = connections.get(appId) ?? 0;
      if (max > 0 && n >= max) return false;
      connections.set(appId, n + 1);
      return true;
    },
    releaseConnection(appId, _id) {
      const n = (connections.get(appId) ?? 0) - 1;
      if (n > 0) connections.set(appId, n);
      else connections.delete(appId);
    },
    userPresence(appId, userId, isOnline) {
      const key = `${appId}\u0000${userId}`;
      if (isOnline) online.add(key);
      else online.delete(key);
      userPresence(appId, userId, isOnline);
      return Promise.resolve();
    },
    onUserPresence(handler) {
      userPresence = handler;
    },
    async usersOnline(appId, userIds) {
      return new Set(userIds.filter((id) => online.has(`${appId}\u0000${id}`)));
    },
    onReaped() {
      // One node is the whole cluster: no other node can die.
    },
    onCountPublished(handler) {
      countPublished = handler;
    },
    async channels(appId, query = {}) {
      const started = performance.now();
      const out = new Map<string, ChannelCounts>();
      for (const name of membership.channelNames(appId)) {
        if (query.prefix !== undefined && !name.startsWith(query.prefix)) continue;
        if (query.include === undefined || query.include(name)) out.set(name, counts(appId, name));
      }
      metrics.adapterRequest('channels', (performance.now() - started) / 1000);
      return out;
    },
    async channel(appId, name) {
      const started = performance.now();
      const result = counts(appId, name);
      metrics.adapterRequest('counts', (performance.now() - started) / 1000);
      return result;
    },
    async members(appId, name) {
      const started = performance.now();
      const out = membership.members(appId, name);
      metrics.adapterRequest('members', (performance.now() - started) / 1000);
      return out;
    },
    async hasMember(appId, name, userId) {
      const started = performance.now();
      const present = membership.hasMember(appId, name, userId);
      metrics.adapterRequest('members', (performance.now() - started) / 1000);
      return present;
    },
    async cacheGet(appId, channel): Promise<CachedEvent | undefined> {
      return cache.get(appId, channel);
    },
    // Publishing is synchronous here: the cache is always in order with the events already delivered.
    async cacheReplay(appId, channel): Promise<CachedEvent | undefined> {
      return cache.get(appId, channel);
    },
    cacheSet(appId, channel, event) {
      cache.set(appId, channel, event);
    },
    terminateUser(appId, userId) {
      terminate(appId, userId);
      return Promise.resolve();
    },
    // Membership is decided in memory, synchronously: nothing is ever in flight. Nor is a count held back once the drain
    // closed every connection: each channel was vacated, which disarms its trailing count.
    settle: async () => undefined,
    status: () => ({ adapter: 'local', up: true, pending: 0, congested: false }),
    // Delivery is a direct call: whatever was published has already been handed over.
    flush: async () => undefined,
    async close() {
      membership.close();
      cache.clear();
    },
  };
}
