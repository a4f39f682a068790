/**
 * `flush()` of the Redis engine: a marker published after this node's envelopes comes back through the subscriber once
 * every earlier envelope has. That holds per connection: one Redis runs one connection's commands in order and pushes
 * messages to a subscriber in that order.
 *
 * - Single Redis: every envelope and the marker go through the one command connection to the one server, so one marker
 *   on the control channel (which every node subscribes) is enough.
 * - Redis Cluster (sharded pub/sub): each shard orders only its own channels, and shards keep no order between them. So
 *   the flush sends one marker per shard this node published to, on the last channel of that shard this node published
 *   to and listens to (an envelope on a channel this node does not listen to never comes back here, so it needs none).
 *   If this node no longer listens to that channel, any channel of the same shard it still listens to carries the marker:
 *   the shard pushes to this node's one subscriber connection in the order it ran the commands, whatever the channel.
 *   None left means no local subscriber waits for that shard's envelopes. One channel per shard is remembered, so the
 *   memory is bounded by the number of shards. Other nodes listening to that channel receive the marker too and ignore it.
 *
 * A marker is a NUL byte and an id: never valid JSON, so no envelope decoder mistakes one for an event.
 */
import { randomUUID } from 'node:crypto';

const MARK = '\u0000';

export interface FlushMarkerOptions {
  /** Sharded pub/sub (Redis Cluster) rather than one Redis. */
  sharded: boolean;
  control: string;
  publish(channel: string, message: string): Promise<unknown>;
  /** Whether this node's subscriber is subscribed to `channel` (acknowledged). */
  listens(channel: string): boolean;
  /** The channels `listens` is true for (walked only by a flush whose remembered channel of a shard was left). */
  listened(): Iterable<string>;
  /** The shard serving `channel` (any stable key: the marker needs one channel per shard). */
  shardOf(channel: string): string;
}

export class FlushMarkers {
  /** Markers in flight: id → resolve, and the shard of a flush's marker (sharded; undefined for anything else). */
  private readonly pending = new Map<string, { done: () => void; shard: string | undefined }>();
  /** Sharded only: shard → the last channel published to on it that this node listens to. */
  private readonly lastByShard = new Map<string, string>();

  constructor(private readonly options: FlushMarkerOptions) {}

  /** Records that an envelope went out on `channel`. */
  sent(channel: string): void {
    if (this.options.sharded && this.options.listens(channel)) this.lastByShard.set(this.options.shardOf(channel), channel);
  }

  /** Handles `message` when it is a marker; false for anything else. */
  received(message: string): boolean {
    if (message.charCodeAt(0) !== 0) return false;
    this.pending.get(message.slice(MARK.length))?.done();
    return true;
  }

  /** Resolves once every envelope sent before it has come back; a marker that cannot be sent resolves at once. */
  flush(): Promise<void> {
    return Promise.all(this.targets().map((channel) => this.mark(channel))).then(() => undefined);
  }

  /**
   * A marker for the caller to publish itself (in a script, after what it read: redis-scripts.ts CACHE_READ_LUA): its
   * message, and `arrived`, resolved when it comes back through this node's subscriber, when `cancel` is called (the
   * script failed: it never comes), or after `timeoutMs` (a lost one must not hold its caller).
   */
  expect(timeoutMs: number): { message: string; arrived: Promise<void>; cancel(): void } {
    const id = randomUUID();
    let done: () => void = () => undefined;
    const arrived = new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), timeoutMs);
      done = (): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve();
      };
      this.pending.set(id, { done, shard: undefined });
    });
    return { message: MARK + id, arrived, cancel: () => done() };
  }

  /** Resolves every flush in flight (the engine is closing). */
  cancel(): void {
    for (const { done } of [...this.pending.values()]) done();
  }

  /**
   * The subscriber that would receive the markers in flight is gone — this node's (`shard` undefined) or its connection
   * to one shard — with whatever was on its way to it: those markers never come, and what they waited for is lost (and
   * counted as a gap when the subscriber is back). Resolves their flushes, as a marker that cannot be sent resolves; a
   * flush waited for the whole shutdown deadline instead, every client of the draining node cut unclosed (a probe).
   */
  subscriberLost(shard?: string): void {
    // A named shard's own markers only: a cache read's (`expect`, no shard) is ordered by its channel's shard, which may
    // be another, and has its own timeout (a review: any shard down ended every cache read in flight).
    for (const marker of [...this.pending.values()]) if (shard === undefined || marker.shard === shard) marker.done();
  }

  private targets(): string[] {
    if (!this.options.sharded) return [this.options.control];
    const channels: string[] = [];
    const left = new Set<string>();
    for (const [shard, channel] of this.lastByShard) {
      if (this.options.listens(channel)) channels.push(channel);
      else left.add(shard);
    }
    this.lastByShard.clear();
    if (left.size === 0) return channels;
    for (const channel of this.options.listened()) {
      if (left.delete(this.options.shardOf(channel))) channels.push(channel);
      if (left.size === 0) break;
    }
    return channels;
  }

  private mark(channel: string): Promise<void> {
    const id = randomUUID();
    const shard = this.options.sharded ? this.options.shardOf(channel) : undefined;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.pending.delete(id);
        resolve();
      };
      this.pending.set(id, { done, shard });
      this.options.publish(channel, MARK + id).catch(done);
    });
  }
}
