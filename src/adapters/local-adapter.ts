/** The embedded single-node engine: delivery is a direct call, queries read this node's hub. */
import type { Hub } from '../realtime/hub.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Adapter, CachedEvent, ChannelCounts } from './adapter.js';
import type { Envelope } from './envelope.js';

/** Cache channels whose last event this node keeps at most. */
const MAX_CACHED_CHANNELS = 100_000;

export interface LocalAdapterOptions {
  hub: Hub;
  metrics: Pick<Metrics, 'adapterMessage' | 'adapterRequest'>;
  /** How long a cache channel keeps its last event (Pusher: 30 minutes). */
  cacheTtlMs: number;
  now?: () => number;
}

/**
 * Local delivery is one hop, but it is counted like a cluster engine's (`published` then `received`) and its queries are
 * timed, so dashboards read the same on one node and on many.
 */
export function createLocalAdapter({ hub, metrics, cacheTtlMs, now = Date.now }: LocalAdapterOptions): Adapter {
  let deliver: (envelope: Envelope) => void = () => {};
  let terminate: (appId: string, userId: string) => void = () => {};
  const cache = new Map<string, { event: CachedEvent; expiresAt: number }>();

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
    async cacheGet(appId, channel) {
      const key = `${appId}\u0000${channel}`;
      const hit = cache.get(key);
      if (hit === undefined) return undefined;
      if (hit.expiresAt <= now()) {
        cache.delete(key);
        return undefined;
      }
      return hit.event;
    },
    cacheSet(appId, channel, event) {
      // Bounded: past the cap the oldest entry goes (a Map iterates in insertion order; a re-set moves a key to the end).
      const key = `${appId}\u0000${channel}`;
      cache.delete(key);
      if (cache.size >= MAX_CACHED_CHANNELS) {
        const oldest = cache.keys().next();
        if (oldest.done !== true) cache.delete(oldest.value);
      }
      cache.set(key, { event, expiresAt: now() + cacheTtlMs });
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
