/**
 * A cache channel's last event as a cluster engine stores it (the Redis engine's `…:cache` value): JSON of the event's
 * fields and its expiry, read back into a CachedEvent of the same shape. The one place that format is written and read:
 * a field added to CachedEvent travels once it is added here.
 */
import type { CachedEvent } from './adapter.js';

/** The stored JSON: the event's fields and when it expires (Unix ms). */
interface CachedJson {
  event: string;
  data: string;
  expiresAt: number;
}

/** The stored value of `event`, expiring at `expiresAt` (Unix ms). */
export function encodeCachedEvent(event: CachedEvent, expiresAt: number): string {
  const json: CachedJson = { event: event.event, data: event.data, expiresAt };
  return JSON.stringify(json);
}

/** The event of a stored value and its expiry; undefined for a value that is not one (never written by Beacon). */
export function decodeCachedEvent(raw: string): { event: CachedEvent; expiresAt: number } | undefined {
  let o: Partial<CachedJson>;
  try {
    o = JSON.parse(raw) as Partial<CachedJson>;
  } catch {
    return undefined;
  }
  if (typeof o !== 'object' || o === null || typeof o.event !== 'string' || typeof o.data !== 'string') return undefined;
  if (typeof o.expiresAt !== 'number') return undefined;
  // A `userId` in a value an older Beacon wrote (it cached presence client events) is left out: only the backend's
  // events are cached now, and such a value expires with its TTL.
  return { event: { event: o.event, data: o.data }, expiresAt: o.expiresAt };
}
