/**
 * One shutdown deadline shared by every stage of the drain (the model is centrifuge's `Node.Shutdown(ctx)`): each stage
 * asks how much time is left instead of carrying its own fraction of `SHUTDOWN_TIMEOUT_MS`, so the stages together can never
 * outlast the bound, and the last one (the log flush) gets whatever the earlier ones did not use.
 */

/** A point in time every stage of a shutdown must finish by. */
export class Deadline {
  /** `performance.now()` value at which the time is up. */
  readonly at: number;

  constructor(totalMs: number, now: number = performance.now()) {
    this.at = now + totalMs;
  }

  /** Milliseconds left, never negative. */
  remainingMs(): number {
    return Math.max(0, this.at - performance.now());
  }

  /** True once the time is up. */
  get expired(): boolean {
    return this.remainingMs() === 0;
  }

  /**
   * Waits for `work` or until the deadline (or `capMs`, if smaller), whichever comes first. Resolves `true` when `work`
   * settled in time; never rejects (a failing stage must not stop the later ones).
   */
  async race(work: Promise<unknown>, capMs: number = Number.POSITIVE_INFINITY): Promise<boolean> {
    const until = performance.now() + Math.min(capMs, this.remainingMs());
    let timer: NodeJS.Timeout | undefined;
    // Node's timers run on a millisecond clock and can fire up to a millisecond before a fractional `performance.now()`
    // target: re-armed until the target has really passed, so "timed out" always means `expired` (or the cap) holds.
    const timedOut = new Promise<false>((resolve) => {
      // Armed even with no time left: work that is already done (a stage with nothing to wait for) settles first.
      const check = (): void => {
        const left = until - performance.now();
        if (left <= 0) resolve(false);
        else timer = setTimeout(check, Math.ceil(left));
      };
      timer = setTimeout(check, Math.max(0, Math.ceil(until - performance.now())));
    });
    const done = work.then(
      () => true as const,
      () => true as const,
    );
    try {
      return await Promise.race([done, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sleeps `ms` or until the deadline, whichever is sooner. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, Math.min(ms, this.remainingMs())));
  }
}
