/**
 * The last event of each cache channel on this node, bounded in bytes: past `maxBytes` the least recently used channel's
 * event is evicted (and counted), so a flood of large cache events costs at most `maxBytes` of heap, never a count cap
 * times the largest payload. An expired event goes when it is read, and each `set` also drops expired events from the
 * least recently used end: a churn of ever-new cache channels holds what its last TTL set, not `maxBytes` of events
 * nobody will be sent (a probe: 25 000 tiny events a round grew the heap by 6 MB a round until the bound).
 */
import { LRUCache } from 'lru-cache';
import type { CachedEvent } from '../adapters/adapter.js';

/**
 * Bookkeeping bytes charged per entry beyond its strings (map slots, the entry objects, the strings' headers), so tiny
 * events are bounded too: 200 000 events of a 9-byte JSON on 24-character channels took 264 bytes of heap each (after a
 * full GC), of which the strings' 36 were all that was charged with 96 here.
 */
const ENTRY_OVERHEAD_BYTES = 224;
/** Expired events a `set` drops at most from the least recently used end: more than it adds, so the expired drain. */
const EXPIRED_DROPPED_PER_SET = 2;

export interface EventCacheOptions {
  /** Bytes of channel names, event names and data held at most (plus ENTRY_OVERHEAD_BYTES per entry). */
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
      const at = now();
      // The least recently used are the likeliest expired; one that is not ends the look (the rest go when read, or later).
      const expired: string[] = [];
      for (const key of lru.rkeys()) {
        if (expired.length === EXPIRED_DROPPED_PER_SET || lru.peek(key)!.expiresAt > at) break;
        expired.push(key);
      }
      for (const key of expired) lru.delete(key);
      // An event larger than the whole bound is not kept at all (lru-cache refuses it): the channel then misses.
      lru.set(keyOf(appId, channel), { appId, event, expiresAt: at + ttlMs });
    },
    bytes: () => lru.calculatedSize,
    clear: () => lru.clear(),
  };
}
