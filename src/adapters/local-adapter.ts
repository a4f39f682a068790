/** The embedded single-node engine: delivery is a direct call, queries read this node's hub. */
import type { Hub } from '../realtime/hub.js';
import type { Adapter, CachedEvent, ChannelCounts } from './adapter.js';
import type { Envelope } from './envelope.js';

export interface LocalAdapterOptions {
  hub: Hub;
  /** How long a cache channel keeps its last event (Pusher: 30 minutes). */
  cacheTtlMs: number;
  now?: () => number;
}

export function createLocalAdapter({ hub, cacheTtlMs, now = Date.now }: LocalAdapterOptions): Adapter {
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
      deliver(envelope);
    },
    async channels(appId) {
      const out = new Map<string, ChannelCounts>();
      for (const name of hub.state(appId)?.channels.keys() ?? []) out.set(name, counts(appId, name));
      return out;
    },
    async channel(appId, name) {
      return counts(appId, name);
    },
    async members(appId, name) {
      const out = new Map<string, unknown>();
      for (const m of hub.channel(appId, name)?.members.values() ?? []) out.set(m.userId, m.userInfo);
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
      cache.set(`${appId}\u0000${channel}`, { event, expiresAt: now() + cacheTtlMs });
    },
    terminateUser(appId, userId) {
      terminate(appId, userId);
    },
    status: () => ({ adapter: 'local', up: true }),
    async close() {
      cache.clear();
    },
  };
}
