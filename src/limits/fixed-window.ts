/**
 * A fixed one-second window counter: the cheapest rate limit that is exact enough for flood protection. Its callers pass
 * `performance.now()`, a clock that only goes forward: on the wall clock a step back (an NTP correction, a VM resumed)
 * kept a window open until the clock came back to it, its count growing — every frame, connect or API call past the
 * limit refused for as long as the step. A `now` before the window's start (a caller's other clock) starts a new one.
 */
export class FixedWindow {
  /**
   * When the current window began; none yet, so the first event opens one. 0 made the first window [0, 1000) of the
   * clock: on `performance.now()`, the process's first second — a burst that began in it had its count reset a moment
   * later (CI: eight API requests in 200 ms, every one admitted under a limit of 5).
   */
  private windowStart = Number.NEGATIVE_INFINITY;
  private count = 0;

  /** `perSecond` of 0 means unlimited. */
  constructor(private readonly perSecond: number) {}

  /** Counts one event at `now` (ms) and says whether it is within the limit. */
  allow(now: number): boolean {
    if (this.perSecond === 0) return true;
    if (now - this.windowStart >= 1000 || now < this.windowStart) {
      this.windowStart = now;
      this.count = 0;
    }
    this.count++;
    return this.count <= this.perSecond;
  }

  /**
   * Counts `count` more events at `now` without asking: work already done that was worth that many (an answer far larger
   * than the frame that asked for it). Past the limit, the next `allow` in this window says no.
   */
  charge(count: number, now: number): void {
    if (this.perSecond === 0 || count <= 0) return;
    if (now - this.windowStart >= 1000 || now < this.windowStart) {
      this.windowStart = now;
      this.count = 0;
    }
    this.count += count;
  }

  /** Whether the events counted in the window of `now` are within the limit (a new window: none counted yet). */
  within(now: number): boolean {
    return this.perSecond === 0 || now - this.windowStart >= 1000 || now < this.windowStart || this.count <= this.perSecond;
  }

  /** The limit per second (0: none). */
  get limit(): number {
    return this.perSecond;
  }

  /** Milliseconds from `now` until the current window ends and the count starts again. */
  resetsIn(now: number): number {
    return Math.min(1000, Math.max(0, this.windowStart + 1000 - now));
  }
}
