/**
 * Interest routing: the subscriber connection listens only to the event channels of the Pusher channels this node has
 * subscribers for. `acquire` counts a local subscriber and resolves once Redis acknowledged the SUBSCRIBE (so whatever
 * is published after the caller's next step reaches this node); `release` uncounts and UNSUBSCRIBEs after the last one.
 * Changes made in one tick go out as one SUBSCRIBE and one UNSUBSCRIBE command (sharded: one per channel, since a
 * sharded SUBSCRIBE must stay within one slot). Commands of one connection are answered in order, so an UNSUBSCRIBE
 * followed by a SUBSCRIBE of the same channel ends subscribed.
 */

/** The pub/sub commands of the subscriber connection (plain or sharded). */
export interface PubSubCommands {
  subscribe(channels: string[]): Promise<unknown>;
  unsubscribe(channels: string[]): Promise<unknown>;
  /** True when a command may carry channels of different slots (a single Redis, not sharded pub/sub). */
  readonly batches: boolean;
}

export class Interest {
  /** Event channel → local subscribers (subscriptions recorded or being recorded on this node). */
  private readonly counts = new Map<string, number>();
  /** Channels whose SUBSCRIBE was sent (acknowledged or in flight: `inflight` has those not acknowledged yet). */
  private readonly subscribed = new Set<string>();
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly touched = new Set<string>();
  private scheduled = false;
  private waiters = new Map<string, { resolve: () => void; reject: (err: unknown) => void }[]>();

  /**
   * `changed` hears each channel this node starts listening to (its SUBSCRIBE acknowledged: what arrives from then on was
   * published after it) and each it stops listening to (its last local subscriber left). A reconnection's resubscription
   * is neither: the node listened all along, and what it missed meanwhile is a loss.
   */
  constructor(
    private readonly commands: PubSubCommands,
    private readonly changed: (channel: string) => void = () => undefined,
  ) {}

  /** Whether this node has local subscribers for `channel` (recorded or being recorded). */
  wants(channel: string): boolean {
    return this.counts.has(channel);
  }

  /**
   * Whether what arrives on `channel` is compared with the last number received (gap counting, envelope-gaps.ts). While
   * the node is subscribed to it in Redis, unless that SUBSCRIBE is still in flight: what comes then may be from before an
   * UNSUBSCRIBE of the node's, still on its way, or the first envelope after the SUBSCRIBE's answer (read in the same chunk,
   * before the answer's callback forgets the old baseline). And while it is subscribed although nobody wants it any more
   * (the UNSUBSCRIBE not sent yet): what comes is received, and a subscriber back in the same turn keeps the subscription —
   * skipped, the next envelope counted them lost. Not subscribed: only if wanted (a reconnection's resubscription, whose
   * losses are real). A probe (a node's only subscriber of a channel toggling every 2 ms, its members churning on another
   * node) counted 1–19 gaps in 5 s on a healthy Redis.
   */
  countsGaps(channel: string): boolean {
    return this.subscribed.has(channel) ? !this.inflight.has(channel) : this.counts.has(channel);
  }

  /** One more local subscriber of `channel`; resolves once this node is subscribed to it in Redis. */
  acquire(channel: string): Promise<void> {
    const n = (this.counts.get(channel) ?? 0) + 1;
    this.counts.set(channel, n);
    if (this.subscribed.has(channel) && !this.touched.has(channel)) return this.inflight.get(channel) ?? Promise.resolve();
    this.schedule(channel);
    return new Promise<void>((resolve, reject) => {
      const list = this.waiters.get(channel) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(channel, list);
    });
  }

  /** One local subscriber fewer (also after a failed `acquire`). */
  release(channel: string): void {
    const n = (this.counts.get(channel) ?? 0) - 1;
    if (n > 0) {
      this.counts.set(channel, n);
      return;
    }
    this.counts.delete(channel);
    this.schedule(channel);
  }

  /** Channels with local subscribers (to subscribe again after a reconnection). */
  channels(): string[] {
    return [...this.counts.keys()];
  }

  /** After a reconnection: every channel is unsubscribed until `resubscribed` says otherwise. */
  reset(): void {
    this.subscribed.clear();
    this.inflight.clear();
  }

  /** The reconnection's SUBSCRIBE of `channels()` succeeded. */
  resubscribed(channels: readonly string[]): void {
    for (const c of channels) if (this.counts.has(c)) this.subscribed.add(c);
  }

  /** Whether Redis acknowledged this node's subscription to `channel` (and no change is pending). */
  listens(channel: string): boolean {
    return this.subscribed.has(channel) && !this.inflight.has(channel) && !this.touched.has(channel);
  }

  /** The event channels `listens` is true for. */
  *listened(): Iterable<string> {
    for (const channel of this.subscribed) if (this.listens(channel)) yield channel;
  }

  /** Number of event channels this node listens to. */
  get size(): number {
    return this.subscribed.size;
  }

  private schedule(channel: string): void {
    this.touched.add(channel);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const subscribe: string[] = [];
    const unsubscribe: string[] = [];
    for (const channel of this.touched) {
      const wanted = this.counts.has(channel);
      if (wanted && !this.subscribed.has(channel)) subscribe.push(channel);
      else if (!wanted && this.subscribed.has(channel)) unsubscribe.push(channel);
      else this.settle([channel], this.inflight.get(channel) ?? Promise.resolve());
    }
    this.touched.clear();
    if (unsubscribe.length > 0) {
      this.settle(unsubscribe, Promise.resolve());
      for (const c of unsubscribe) {
        this.subscribed.delete(c);
        this.inflight.delete(c);
        this.changed(c);
      }
      for (const group of this.groups(unsubscribe)) this.commands.unsubscribe(group).catch(() => undefined);
    }
    for (const group of this.groups(subscribe)) {
      for (const c of group) this.subscribed.add(c);
      const done = this.commands.subscribe(group).then(
        () => {
          for (const c of group) {
            if (this.inflight.get(c) === done) this.inflight.delete(c);
            this.changed(c);
          }
        },
        (err: unknown) => {
          // Not subscribed after all: the next acquire (or the reconnection) tries again.
          for (const c of group) {
            if (this.inflight.get(c) === done) this.inflight.delete(c);
            this.subscribed.delete(c);
          }
          throw err;
        },
      );
      // Waiters get the failure through `settle`; a SUBSCRIBE nobody waits for must not become an unhandled rejection.
      done.catch(() => undefined);
      for (const c of group) this.inflight.set(c, done);
      this.settle(group, done);
    }
  }

  private settle(channels: readonly string[], done: Promise<void>): void {
    for (const c of channels) {
      const list = this.waiters.get(c);
      if (list === undefined) continue;
      this.waiters.delete(c);
      for (const w of list) done.then(w.resolve, w.reject);
    }
  }

  private groups(channels: string[]): string[][] {
    if (channels.length === 0) return [];
    return this.commands.batches ? [channels] : channels.map((c) => [c]);
  }
}
