/**
 * Exponential back-off with jitter, shared by every retry loop (webhook requests, Loki pushes): retry number `attempt`
 * (≥ 1) waits a delay drawn uniformly from the upper half of `min(maxMs, baseMs · 2^(attempt-1))` ("equal jitter").
 * The jitter keeps many nodes (or many webhooks of one node) that failed together from retrying in step against a receiver
 * that is coming back; keeping the lower half out keeps a minimum spacing, so a receiver that is down is never hammered
 * sooner than half the nominal back-off. `random` is injectable so tests can pin the bounds.
 */

/** The nominal back-off before retry number `attempt` (≥ 1): `min(maxMs, baseMs · 2^(attempt-1))`, in milliseconds. */
export function backoffCeilingMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

/** The delay before retry number `attempt` (≥ 1), in milliseconds, within [ceiling / 2, ceiling]. */
export function jitteredBackoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = backoffCeilingMs(attempt, baseMs, maxMs);
  return ceiling / 2 + random() * (ceiling / 2);
}
