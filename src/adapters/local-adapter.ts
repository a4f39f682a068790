/** The embedded single-node engine: delivery is a direct call, queries read this node's hub. */
import { createEventCache } from '../realtime/event-cache.js';
import type { Hub } from '../realtime/hub.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Adapter, CachedEvent, ChannelCounts } from './adapter.js';
import type { Envelope } from './envelope.js';

/** CACHE_MAX_BYTES's default, for callers that do not pass one. */
const DEFAULT_CACHE_MAX_BYTES = 64 * 1024 * 1024;

export interface LocalAdapterOptions {
  hub: Hub;
  metrics: Pick<Metrics, 'adapterMessage' | 'adapterRequest'>;
  /** How long a cache channel keeps its last event (Pusher: 30 minutes). */
  cacheTtlMs: number;
  /** Bytes of cache-channel events kept (CACHE_MAX_BYTES); least recently used evicted past it. */
  cacheMaxBytes?: number;
  /** Told for each cache event evicted for room (websocket_cache_evictions_total). */
  onCacheEvicted?: (appId: string) => void;
  now?: () => number;
}

/**
 * Local delivery is one hop, but it is counted like a cluster engine's (`published` then `received`) and its queries are
 * timed, so dashboards read the same on one node and on many.
 */
export function createLocalAdapter(options: LocalAdapterOptions): Adapter {
  const { hub, metrics, cacheTtlMs, now = Date.now } = options;
  let deliver: (envelope: Envelope) => void = () => {};
  let terminate: (appId: string, userId: string) => void = () => {};
  const cache = createEventCache({
    maxBytes: options.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES,
    ttlMs: cacheTtlMs,
    onEvicted: options.onCacheEvicted ?? (() => {}),
    now,
  });

  const counts = (appId: string, name: string): ChannelCounts => {
    const channel = hub.channel(appId, name);
    return { subscriptionCount: channel?.subscribers.size ?? 0, userCount: channel?.members.size ?? 0 };
  };

  return {
    name: 'local',
    onEnvelope(handler) {
      deliver = handler;
    },
    onTerminateUser(handler) {
      terminate = handler;
    },
    publish(envelope) {
      metrics.adapterMessage('published');
      metrics.adapterMessage('received');
      deliver(envelope);
    },
    async channels(appId) {
      const started = performance.now();
      const out = new Map<string, ChannelCounts>();
      for (const name of hub.state(appId)?.channels.keys() ?? []) out.set(name, counts(appId, name));
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
      const out = new Map<string, unknown>();
      for (const m of hub.channel(appId, name)?.members.values() ?? []) out.set(m.userId, m.userInfo);
      metrics.adapterRequest('members', (performance.now() - started) / 1000);
      return out;
    },
    async cacheGet(appId, channel): Promise<CachedEvent | undefined> {
      return cache.get(appId, channel);
    },
    cacheSet(appId, channel, event) {
      cache.set(appId, channel, event);
    },
    terminateUser(appId, userId) {
      terminate(appId, userId);
    },
    status: () => ({ adapter: 'local', up: true }),
    // Delivery is a direct call: whatever was published has already been handed over.
    flush: async () => undefined,
    async close() {
      cache.clear();
    },
  };
}
