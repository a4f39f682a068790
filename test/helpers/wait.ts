/**
 * Bounded waits for tests. Every wait fails the test with a message naming what it waited for once its timeout passes;
 * none of them sleeps to synchronise (polling `until` re-checks a condition, it does not guess how long something takes).
 */

/** Long enough for anything on loopback, short enough that a missing event fails the test quickly. */
export const WAIT_MS = 3000;

/** `promise`, or a rejection naming `what` after `timeoutMs`. */
export function within<T>(promise: Promise<T>, what: string, timeoutMs = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves once `check()` holds, re-checking every 10 ms; rejects naming `what` after `timeoutMs`. */
export async function until(check: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Like `until` for a check that must ask something asynchronously (an HTTP query, a Redis command); a failing check counts as not yet. */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = WAIT_MS, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
