/**
 * The shards (one Redis: the one) that stopped answering while their connection stays open: a frozen process, a long
 * command, a network that drops packets. Such a Redis takes what the node sends, or its socket buffer does, and answers
 * nothing; the publishes answered 200 meanwhile are carried late if it wakes and lost if it is then killed. Below the
 * congestion bound (redis-adapter.ts) nothing else refuses them, so each was counted as a `timeout` one second later, and
 * a hung-then-killed Redis lost every publish of its hang (122 in one probe).
 *
 * A publish with no answer in the command timeout marks its shard stalled. While it is, the HTTP API refuses publishes to
 * its channels with 503 (the adapter's `shardDown`), so at most one command timeout of publishes is at stake. The mark
 * goes with the shard's next answer: a key read on it sent at once (a node whose own event loop was held past the timeout
 * gets its answer within a moment) and again after each failure, and any publish to it answered meanwhile. A connection
 * that closes ends the mark unsaid: the engine's or the shard's own down state takes over, and a reconnected Redis has
 * answered its ready check.
 */

/** ioredis' `commandTimeout` rejection: the command was sent, or is queued to be, with its outcome unknown. */
export function isTimeout(err: Error): boolean {
  return err.message === 'Command timed out';
}

/** What the tracker is told to do and say. */
export interface StallDeps {
  /** A read of `key` on its shard: resolves once the shard answered, rejects on a timeout or a closed connection. */
  probe(key: string): Promise<unknown>;
  stalled(shard: string): void;
  answered(shard: string, stalledForMs: number): void;
}

/** How long a probe that failed other than by timing out (a closed connection) waits before the next. */
const PROBE_RETRY_MS = 1000;

interface Stall {
  since: number;
  /** A key of the shard, read to ask whether it answers again. */
  key: string;
  timer: NodeJS.Timeout | undefined;
}

export class ShardStalls {
  private readonly stalls = new Map<string, Stall>();

  constructor(private readonly deps: StallDeps) {}

  /** Whether any shard is stalled: one comparison, so the healthy path builds no shard name. */
  some(): boolean {
    return this.stalls.size > 0;
  }

  has(shard: string): boolean {
    return this.stalls.has(shard);
  }

  /** A command to `shard` (whose key `key` is) got no answer in the command timeout. */
  timedOut(shard: string, key: string): void {
    if (this.stalls.has(shard)) return;
    const stall: Stall = { since: performance.now(), key, timer: undefined };
    this.stalls.set(shard, stall);
    this.deps.stalled(shard);
    this.ask(shard, stall);
  }

  /** `shard` answered a command: its stall, if any, is over. */
  answered(shard: string): void {
    const stall = this.stalls.get(shard);
    if (stall === undefined) return;
    this.forget(shard, stall);
    this.deps.answered(shard, Math.round(performance.now() - stall.since));
  }

  /** The shard's connection closed (or, without `shard`, the engine's): its mark goes unsaid (the module comment says why). */
  closed(shard?: string): void {
    for (const [s, stall] of this.stalls) if (shard === undefined || s === shard) this.forget(s, stall);
  }

  private forget(shard: string, stall: Stall): void {
    clearTimeout(stall.timer);
    this.stalls.delete(shard);
  }

  private ask(shard: string, stall: Stall): void {
    stall.timer = undefined;
    this.deps.probe(stall.key).then(
      () => {
        if (this.stalls.get(shard) === stall) this.answered(shard);
      },
      (err: Error) => {
        if (this.stalls.get(shard) !== stall) return;
        // A timeout was the wait already; a closed connection is tried again a little later.
        if (isTimeout(err)) this.ask(shard, stall);
        else {
          stall.timer = setTimeout(() => this.ask(shard, stall), PROBE_RETRY_MS);
          stall.timer.unref();
        }
      },
    );
  }
}
