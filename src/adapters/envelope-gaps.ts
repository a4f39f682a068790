/**
 * Losses of Redis pub/sub, counted where they happen: on the node that should have received an envelope. Redis delivers a
 * publication at most once, to the subscriber connections present at that moment: what a node misses while its subscriber
 * reconnects, or after Redis closed it for overrunning `client-output-buffer-limit pubsub` (32 MB by default: a burst of
 * large publishes to a node that reads slower), is gone, and the publisher's command succeeded. Nothing else sees it.
 *
 * So each node numbers what it publishes, per event channel (`Numbering`): the envelope carries the node, the run of the
 * channel's numbers and the number. Each node remembers the last number it received per channel and publisher
 * (`GapCounter`) and counts the numbers it skipped. A run starts at 1 when a channel's numbering is created and is
 * identified by the node's counter of runs, so a numbering pruned and created again is a new run, never a number going
 * back. The first envelope of a run a node sees sets its baseline (it may have subscribed mid-run); a channel this node
 * stopped listening to is forgotten (what it did not listen to was not lost).
 *
 * Both sides keep two generations: what was not touched for a whole generation is dropped at the next rotation, so the
 * memory follows the channels published to in the last minute or two (the publisher) or ten or twenty (the receiver,
 * RECEIVER_GENERATIONS), not every channel ever seen; the publisher also drops a channel's numbers when Redis says no
 * envelope of its run reached anybody (`Numbering.answered`). What this leaves uncounted: a loss no later envelope of
 * the same run follows — the end of a burst, or a channel whose next publish comes after the publisher dropped its
 * numbers (a minute or two of quiet): the next envelope begins a new run, a baseline.
 */

/** What an envelope carries to tell its receivers what they missed. */
export interface EnvelopeStamp {
  /** The publishing node's id (with its random suffix: a restarted node is another publisher). */
  node: string;
  /** The run of the channel's numbers on that node. */
  run: number;
  /** The envelope's number in its run, from 1. */
  n: number;
}

/** How long an untouched entry survives: between one and two of these. */
export const GENERATION_MS = 60_000;

/**
 * A receiver's generation, in the publisher's (`GapCounter.rotate` is called every GENERATION_MS): a receiver touches its
 * entry only when an envelope comes, so a subscriber away longer than its generation while the channel was published to
 * came back without a baseline, and everything it missed went uncounted (a probe: a subscriber kept off Redis 150 s).
 * Ten minutes: what it holds is bounded by the channels it listens to (`forget`) and their publishers of that time.
 */
export const RECEIVER_GENERATIONS = 10;

/** Two maps: lookups move an entry from the old one to the new one; `rotate` drops the old one. */
class Generations<V> {
  private current = new Map<string, V>();
  private previous = new Map<string, V>();

  get(key: string): V | undefined {
    const value = this.current.get(key);
    if (value !== undefined) return value;
    const old = this.previous.get(key);
    if (old !== undefined) {
      this.previous.delete(key);
      this.current.set(key, old);
    }
    return old;
  }

  set(key: string, value: V): void {
    this.current.set(key, value);
  }

  delete(key: string): void {
    this.current.delete(key);
    this.previous.delete(key);
  }

  rotate(): void {
    this.previous = this.current;
    this.current = new Map();
  }

  /** Entries held in both generations. */
  get size(): number {
    return this.current.size + this.previous.size;
  }
}

/** The publisher's numbers, per event channel. */
export class Numbering {
  private readonly channels = new Generations<{ run: number; n: number; heard: boolean }>();
  private runs = 0;

  constructor(private readonly node: string) {}

  /** The stamp of the next envelope published to `channel`. */
  next(channel: string): EnvelopeStamp {
    let numbers = this.channels.get(channel);
    if (numbers === undefined) {
      numbers = { run: ++this.runs, n: 0, heard: false };
      this.channels.set(channel, numbers);
    }
    numbers.n += 1;
    return { node: this.node, run: numbers.run, n: numbers.n };
  }

  /**
   * Redis answered `stamp`'s publish: it reached `receivers` subscriber connections (of the server that answered: a
   * subscriber on a replica is not counted, so the caller passes `mayDrop` false while its connections may be on a
   * demoted master; and a publish that timed out may have been carried, so it counts as heard). A run that has reached a node is kept
   * (a later publish reaching nobody may be one that node's subscriber misses while it reconnects: a gap to count). A run
   * that never reached anyone is dropped, unless a later envelope was numbered meanwhile: no node has a baseline of it, so
   * none could count a gap in it, and a node that subscribes later takes the next envelope, of a new run, as its baseline
   * as it would mid-run. Without this, a publisher to ever-new channels nobody listens to (a backend's per-user channels)
   * held an entry per channel for one to two generations: ~110 B each, 1 M entries at 9 000 channels a second (a probe).
   */
  answered(channel: string, stamp: EnvelopeStamp, receivers: number, mayDrop = true): void {
    const numbers = this.channels.get(channel);
    if (numbers === undefined || numbers.run !== stamp.run) return;
    if (receivers > 0) numbers.heard = true;
    else if (mayDrop && !numbers.heard && numbers.n === stamp.n) this.channels.delete(channel);
  }

  /** Channels numbered, in both generations. */
  get size(): number {
    return this.channels.size;
  }

  rotate(): void {
    this.channels.rotate();
  }
}

/**
 * The receiver's last number per channel and publisher, and the `era` it was received in (the receiver's count of its
 * subscriber's resubscriptions: a gap across one is what that resubscription lost).
 */
export class GapCounter {
  private readonly channels = new Generations<Map<string, { run: number; n: number; era: number }>>();
  /** The era of the envelope received before the last one `received` counted skips for. */
  previousEra = 0;
  private ticks = 0;

  /** How many envelopes of `stamp`'s run on `channel` were skipped before this one (0 for a first, a repeat, a late one). */
  received(channel: string, stamp: EnvelopeStamp, era = 0): number {
    let publishers = this.channels.get(channel);
    if (publishers === undefined) {
      publishers = new Map();
      this.channels.set(channel, publishers);
    }
    const last = publishers.get(stamp.node);
    if (last === undefined || last.run !== stamp.run) {
      publishers.set(stamp.node, { run: stamp.run, n: stamp.n, era });
      return 0;
    }
    if (stamp.n <= last.n) return 0;
    const skipped = stamp.n - last.n - 1;
    this.previousEra = last.era;
    last.n = stamp.n;
    last.era = era;
    return skipped;
  }

  /** This node no longer listens to `channel`: what it will not hear is not lost. */
  forget(channel: string): void {
    this.channels.delete(channel);
  }

  /** Called every GENERATION_MS; the receiver's entries rotate every RECEIVER_GENERATIONS of those. */
  rotate(): void {
    if (++this.ticks % RECEIVER_GENERATIONS === 0) this.channels.rotate();
  }
}
