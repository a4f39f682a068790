/**
 * The last event of each cache channel on this node, bounded in bytes: past `maxBytes` the least recently used channel's
 * event is evicted (and counted), so a flood of large cache events costs at most `maxBytes` of heap, never a count cap
 * times the largest payload.
 */
import { LRUCache } from 'lru-cache';
import type { CachedEvent } from '../adapters/adapter.js';

/** Bookkeeping bytes charged per entry beyond its strings (map slots, the entry objects), so tiny events are bounded too. */
const ENTRY_OVERHEAD_BYTES = 96;

export interface EventCacheOptions {
  /** Bytes of channel names, event names, data and user ids held at most (plus ENTRY_OVERHEAD_BYTES per entry). */
  maxBytes: number;
  /** How long an event is replayed after it was set. */
  ttlMs: number;
  /** Told once per event evicted for room (not for expiry or replacement). */
  onEvicted: (appId: string) => void;
  now?: () => number;
}

/** A bytes-bounded, least-recently-used store of cache channels' last events, keyed by app and channel. */
export interface EventCache {
  get(appId: string, channel: string): CachedEvent | undefined;
  set(appId: string, channel: string, event: CachedEvent): void;
  /** Bytes currently charged (what `maxBytes` bounds). */
  bytes(): number;
  clear(): void;
}

interface Entry {
  appId: string;
  event: CachedEvent;
  expiresAt: number;
}

/** Creates an empty cache. */
export function createEventCache({ maxBytes, ttlMs, onEvicted, now = Date.now }: EventCacheOptions): EventCache {
  const lru = new LRUCache<string, Entry>({
    maxSize: maxBytes,
    // UTF-8 bytes is what a client would be sent; JS strings may hold up to twice that, a bound within a factor of two.
    sizeCalculation: (entry, key) =>
      ENTRY_OVERHEAD_BYTES +
      Buffer.byteLength(key) +
      Buffer.byteLength(entry.event.event) +
      Buffer.byteLength(entry.event.data),
    dispose: (entry, _key, reason) => {
      if (reason === 'evict') onEvicted(entry.appId);
    },
  });
  const keyOf = (appId: string, channel: string): string => `${appId}\u0000${channel}`;
  return {
    get(appId, channel) {
      const key = keyOf(appId, channel);
      const hit = lru.get(key);
      if (hit === undefined) return undefined;
      if (hit.expiresAt <= now()) {
        lru.delete(key);
        return undefined;
      }
      return hit.event;
    },
    set(appId, channel, event) {
      // An event larger than the whole bound is not kept at all (lru-cache refuses it): the channel then misses.
      lru.set(keyOf(appId, channel), { appId, event, expiresAt: now() + ttlMs });
    },
    bytes: () => lru.calculatedSize,
    clear: () => lru.clear(),
  };
}
