/**
 * Liveness and reaping for the Redis engine. Each tick (a third of the node TTL) refreshes this node's liveness key, then
 * looks for listed nodes whose key expired; for each, the survivor that takes its lock (`SET NX PX`) removes its share of
 * the cluster state (RedisMembership.reap), unlists it, and records it as one `reap node` span and one `node_reaped` line.
 * A reaper that dies mid-way leaves the lock to expire and the node listed, so another survivor finishes the job.
 *
 * An expired key means a dead node only if Redis took heartbeats all along: when it refused them (down, stalled, out of
 * memory, failing over) for longer than the TTL, every node's key expired, and the first node to beat again would reap
 * live nodes that have not had their turn yet. So a node reaps only once its own heartbeats have been continuous for a
 * full TTL: every beat succeeded, none more than half a TTL after the previous one (a missed beat: nodes beat every third
 * of it). After a gap, or when it starts, it beats for one TTL before it reaps again, which gives every live node a TTL to
 * beat again. Why half a TTL is enough: for another live node's key to expire, Redis must have refused that node for a TTL,
 * and its last good beat was at most a beat interval before the refusals began; a node that missed no beat meanwhile
 * would have seen its own gap exceed half a TTL first.
 *
 * A node whose own key had expired when it beats again (the heartbeat script reads the key as it sets it) says so once
 * (`node_expired`, warn): another node may have reaped its share, or Redis restarted empty; `expired` has the engine
 * record its share again (redis-adapter.ts). Which of the two it was matters to the clients: a reaper announced the
 * members it removed (`member_removed`), a Redis that lost its data announced nothing. So each beat also reads the epoch
 * key (EPOCH_LUA: a random id, set again by the first node to find it missing); an id other than at the node's last beat
 * means Redis lost its data in between, and `expired` says so. A node that finds it changed records its share again
 * even if its key is there (a flush between its key's write and the epoch's read).
 * On a Redis Cluster one key would cover one shard only, and a shard loses its data on its own (a master restarted empty
 * while the others kept theirs): so each beat reads one epoch key per master shard instead, each tagged to land in a
 * slot that master serves (`epochKeys` below says how the tags are picked), and a change of any of them since the last
 * beat is the same loss. A single Redis keeps the one key `epoch`.
 * A beat's timeliness is its liveness script's reply, never its epoch reads': on a Redis Cluster with a master down, the
 * read of that master's key waits for the command timeout (1 s) before it fails, and a beat that waited for it would come
 * late, past half a TTL after the one before it (the first beat after the master went down, for a TTL under 6 s — 5 s by
 * default —; every beat, for one under 3 s), and the node would reap no one for a TTL after it. So on a Redis
 * Cluster the beat is over once its liveness script and its listing have answered; its epoch reads, sent along with it,
 * are acted on when they have all answered or failed (a read that failed is no loss: that key's last id is kept), in the
 * order of the beats, together with what the beat itself found (its key expired, unlisted, a reaper's id): one
 * `expired` call, so a loss that also took the node's key is restored silently, as when the beat waited. On a single
 * Redis the epoch and the liveness key share the one server: the beat waits for both, and a failed read fails it.
 * A loss also stops this node's reaping for a TTL. On a Redis Cluster a shard restarted empty takes the liveness keys
 * it held and none of the others: a node whose own key is elsewhere keeps beating without a gap, and would reap a live
 * node whose key was on that shard before that node's next beat put it back (member_removed and vacated webhooks for
 * live subscriptions, then everything recorded again). A TTL from the loss is seen gives that node its turn: its beats go
 * on (the shard serves again) every third of a TTL. The loss must be seen before the round decides: so each epoch read
 * is compared as soon as it answers (not with the beat's others, in `act`), and a round that finds a key missing waits
 * for its beat's read of that key's shard before it queues the reap. That read was sent first, to the same master, and
 * has answered by then, unless it had to be sent again (NOSCRIPT: a shard restarted empty lost its scripts too); waiting
 * for every read would wait for a down master's timeout. A plain dead node, no loss seen, is reaped as before. Left: a
 * loss between the read and the EXISTS (a round trip) is seen by the next beat only, after that round reaped.
 * A Redis that restarted with its data — loaded from a snapshot (RDB, AOF), or a replica promoted in its master's place —
 * keeps the epoch, yet may be older than what the nodes wrote last: what joined since is missing, what left since back.
 * So each beat also reads the run id of the server holding each epoch key (`INFO server`, redis-run-id.ts: drawn by each
 * server process as it starts), and the same epoch from another run is taken as a loss too (`restored`): the node records
 * its share again, reaps no one for a TTL (a snapshot holds the liveness keys as they were when it was saved: some live
 * nodes' have expired since), and the engine then prunes what it no longer holds (redis-adapter.ts `pruneShare`). A read
 * that fails keeps the last run id; a node that has not read one yet (its first beat) sees no restart.
 * A shard that did not serve for a while takes the same care without losing anything: a master failing over (down until
 * its replica takes over, longer than a TTL with Redis's default node timeout of 15 s) lets the live nodes' keys it holds
 * expire, while the nodes whose keys are elsewhere keep beating. So a key found missing is taken for a dead node only
 * once the epoch reads of its shard have not failed for a TTL (`steady`): its node's beats, every third of a TTL, put it
 * back meanwhile. A node that died during the failover is reaped a TTL after its shard serves again.
 * A heartbeat that fails is logged once per episode (`node_heartbeat_failed`), its end once (`node_heartbeat_resumed`).
 *
 * On a Redis Cluster part of a dead node's share can be on a master that is down: its steps fail, and the reap goes on
 * past them (RedisMembership.reap), so the rest of its share goes now and what was removed is announced (`deps.reaped`,
 * the webhooks) as after a full reap. Such a reap is incomplete: the node stays listed and its indexes whole, it logs
 * `reap_incomplete` (warn, with what it removed and what it left), and shortens its lock to a TTL: a later attempt by any
 * survivor, a TTL or so later, removes the rest once the shard is back (the steps already done change nothing again).
 * Not at every beat, which would send a step to the down master (and wait its timeout) every third of a TTL; not after
 * the 60 s, which would leave the rest that long once the shard is back.
 *
 * A node can come back while a reaper is still removing its share, channel by channel. What it records again meanwhile
 * on a channel the reaper has passed stays recorded, and a reap that went on to delete the node's indexes and unlist it
 * would leave those entries where no later reap finds them, should the node die for good before its next beat (which
 * finds it unlisted and records everything again, indexes included). So the reaper asks whether the node's key is back
 * along with each step (an EXISTS sent just before each app's and each channel's script: no round trip added), and once
 * more before it deletes the indexes; as soon as the key is back it stops there, leaving the node listed and its indexes
 * whole (they list all it may hold, what it recorded meanwhile included, so a later reap finds everything), and logs
 * `reap_stopped` with what it did remove. What it removed after the node came back may have undone what the node
 * recorded again, and nothing else would tell the node: its key is there and it is listed. So the reaper writes its own
 * id into the node's key (only if the key is there: a node that died again is left to expire), and the node's next
 * beat, reading that, records its share again; the reaper lets go of the lock, since the node is alive and its key, as
 * long as it lives, keeps every reaper off. One window is left: a node back between the last check and the unlisting
 * (a round trip) is unlisted all the same; its next beat finds it so and records everything again, but what it recorded
 * in between stays should it die for good before that beat (the node's key, its indexes and the node list are in
 * different slots, so no script could check and unlist in one step on a Redis Cluster).
 */
import { randomBytes } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../telemetry/logger.js';
import { logEvent, type LogLine } from '../telemetry/log-events.js';
import { startReapSpan, withSpan } from '../telemetry/tracing.js';
import type { ReapedChannel } from './adapter.js';
import type { RedisKeys } from './redis-keys.js';
import { masterOf, type ReapOutcome, type RedisMembership } from './redis-membership.js';
import type { InfoDenied } from './redis-info.js';
import { runIdOf } from './redis-run-id.js';
import { EPOCH_LUA, HEARTBEAT_LUA, Script, SHORTEN_LOCK_LUA } from './redis-scripts.js';

/** How long a reaper holds a dead node's lock; another survivor retries after it if the reaper died too. */
const REAP_LOCK_MS = 60_000;
/** What a node's heartbeat writes into its liveness key; a reaper that stopped half-way writes its own id instead. */
const BEATING = '1';

const beat = new Script(HEARTBEAT_LUA);
const epochOf = new Script(EPOCH_LUA);
const shortenLock = new Script(SHORTEN_LOCK_LUA);

/**
 * How many candidate tags (`epoch-0`, `epoch-1`, …) a search for a master's epoch key tries: a master serving a single
 * slot of the 16384 is missed by this many with a chance of e^-16.
 */
const EPOCH_TAG_TRIES = 1 << 18;

/**
 * The epoch keys a beat reads: on a single Redis the one key `epoch`; on a Redis Cluster one per master shard, from the
 * client's slot map (`slots[slot][0]`: the master serving the slot, as ioredis last learned it, MOVED replies included).
 * Empty while the Cluster client has no slot map yet (no epoch is read: the beat does not fail for it).
 *
 * A master's key is the first `shardEpoch('epoch-<i>')` whose slot it serves, so nodes seeing the same map read the same
 * keys. A tag picked is kept while its slot's master has no other tag: the map is walked each beat (16384 entries, no
 * command), and a search only runs for a master left without a tag (the first beat; a master added; its tag's slot
 * moved to another master). Why that tells a loss and nothing else:
 * - resharding moves a key with its slot, value included, so a kept tag reads the same id on its new master;
 * - a failover promotes a replica that holds the data: the slot's master changes, the tag and its id do not;
 * - a tag newly picked has no id from an earlier beat to differ from, so it is never taken for a loss (a shard that lost
 *   its data while its tag was being changed is missed: a resharding and a loss at once).
 * A search that finds no tag for some master (a prefix with braces puts every key in one slot) is not run again until
 * the set of masters changes; those shards are then not watched, as before per-shard epochs.
 */
function epochKeys(client: Redis | Cluster, keys: RedisKeys): () => string[] {
  if (!client.isCluster) return () => [keys.epoch];
  const cluster = client as Cluster;
  const slotOf = new Map<string, number>();
  const masterOf = (tag: string): string | undefined => {
    let slot = slotOf.get(tag);
    if (slot === undefined) slotOf.set(tag, (slot = calculateSlot(keys.shardEpoch(tag))));
    return cluster.slots[slot]?.[0];
  };
  let tags: string[] = [];
  /** The masters a search last failed to cover some of (not searched again for them). */
  let searched: string | undefined;
  return () => {
    const masters = new Set<string>();
    for (const nodes of cluster.slots) if (nodes?.[0] !== undefined) masters.add(nodes[0]);
    const byMaster = new Map<string, string>();
    for (const tag of tags) {
      const master = masterOf(tag);
      if (master !== undefined && masters.has(master) && !byMaster.has(master)) byMaster.set(master, tag);
    }
    const all = [...masters].sort().join(',');
    if (byMaster.size < masters.size && searched !== all) {
      for (let i = 0; i < EPOCH_TAG_TRIES && byMaster.size < masters.size; i++) {
        const master = masterOf(`epoch-${i}`);
        if (master !== undefined && !byMaster.has(master)) byMaster.set(master, `epoch-${i}`);
      }
      slotOf.clear();
      for (const tag of byMaster.values()) masterOf(tag);
      searched = byMaster.size < masters.size ? all : undefined;
    }
    tags = [...byMaster.values()];
    return tags.map((tag) => keys.shardEpoch(tag));
  };
}

export interface ReaperDeps {
  client: Redis | Cluster;
  keys: RedisKeys;
  membership: RedisMembership;
  logger: Pick<Logger, 'info' | 'warn'>;
  nodeId: string;
  nodeTtlMs: number;
  /** Receives what a reap changed (webhooks). */
  reaped: (channels: ReapedChannel[]) => void;
  /**
   * This node's own key had expired when it beat again, or it found itself unlisted (a reap finished), or a reap that
   * found it back stopped half-way, or Redis lost its data since its last beat: its share of the cluster state may be
   * gone (redis-adapter.ts records it again). `dataLost`: the last, so no one was told what was lost. `restored`: Redis
   * (a shard of it) went back to an older state — restarted from a snapshot, or a replica took over — so what this node
   * recorded since may be missing and what left since may be back (the engine prunes its share too); `dataLost` with it.
   */
  expired?: (dataLost: boolean, restored: boolean) => void;
  /** A server refused INFO (redis-info.ts): no restore is seen on it. */
  infoDenied?: InfoDenied;
}

/** A heartbeat that succeeded: when what it found has been acted on, and when its epoch read of a key's shard is done. */
interface Beat {
  acted: Promise<void>;
  /** Resolves once the epoch read of the shard serving `key` answered or failed: true when that shard is steady. */
  epochRead(key: string): Promise<boolean>;
}

/** A heartbeat failure episode: when it began and how many beats failed. */
interface Failing {
  since: number;
  failures: number;
}

/**
 * Heartbeat then reap, once; never throws (a failed tick is retried by the next one). A tick that comes while the previous
 * one is still reaping beats all the same, so a long reap never lets this node's own key expire (a dead node it finds is
 * reaped after the reaps under way; one being reaped is left to that reap); nor does it wait for the previous one's epoch
 * reads. Resolves once what its beat found has been acted on and the reaps it queued are over.
 */
export function createReaper(deps: ReaperDeps): { tick: () => Promise<void> } {
  const { client, keys, nodeId, nodeTtlMs, logger } = deps;
  let beating = false;
  /** When the last heartbeat succeeded (its reply), none yet: undefined. */
  let lastBeat: number | undefined;
  /** When the current run of continuous heartbeats began (undefined: broken by a failure); it may reap a TTL after. */
  let continuousSince: number | undefined;
  let failing: Failing | undefined;
  /** Which epoch keys a beat reads (one, or one per master of a Redis Cluster). */
  const epochKeysNow = epochKeys(client, keys);
  /** The id each epoch key held at the last heartbeat that read it. */
  let epochs = new Map<string, string>();
  /** The run id of the server holding each epoch key, at the last heartbeat that read it (redis-run-id.ts). */
  let runIds = new Map<string, string>();
  /** When an epoch read last answered another id than the last one acted on (a shard lost its data), none yet: undefined. */
  let lossSeenAt: number | undefined;
  /** Per epoch key (per master shard of a Redis Cluster), when a read of it last failed: that shard did not serve. */
  const readFailedAt = new Map<string, number>();

  /**
   * Whether this node may take an expired key for a dead node: its own beats have been continuous for a TTL, and it has
   * seen no data lost for a TTL (the module's comment says why).
   */
  const mayReap = (): boolean =>
    continuousSince !== undefined &&
    lastBeat !== undefined &&
    performance.now() - continuousSince >= nodeTtlMs &&
    performance.now() - lastBeat <= nodeTtlMs / 2 &&
    (lossSeenAt === undefined || performance.now() - lossSeenAt >= nodeTtlMs);

  /** What each beat's epoch reads found, acted on in the order of the beats (never rejects). */
  let acting: Promise<void> = Promise.resolve();

  /**
   * Refreshes this node's key and listing; undefined when Redis refused it. Otherwise `acted` resolves once what the beat
   * found (with its epoch reads, which it does not wait for on a Redis Cluster) has been acted on, and `epochRead(key)`
   * once the beat's epoch read of the shard serving `key` has answered (and been compared) or failed.
   */
  async function heartbeat(): Promise<Beat | undefined> {
    let before: string | null;
    let added: number;
    const read = epochKeysNow();
    const fresh = randomBytes(8).toString('hex');
    // The script reads the key as it sets it (one key, so one slot on a Redis Cluster too): whether it had expired, or
    // holds the id of a reaper that stopped half-way. Read and write are one step: a reaper's write, or an expiry,
    // between an EXISTS and a SET sent one after the other would go unseen. Sent before the epoch reads, so a flush
    // between its key's write and an epoch's read is seen as the loss it is (the module's comment).
    const beaten = beat.run(client, [keys.node(nodeId)], [nodeTtlMs]) as Promise<string | null>;
    const listed = client.sadd(keys.nodes, nodeId);
    // One script per epoch key, in parallel. On a Redis Cluster a shard that does not answer (down: it may hold neither
    // this node's key nor its listing) only goes unread this beat, its last id kept, so a shard that comes back empty is
    // seen at the first beat that reads it.
    const ids = read.map((key) => epochOf.run(client, [key], [fresh]) as Promise<string>);
    const answers = Promise.all(ids.map((id) => (client.isCluster ? id.catch(() => undefined) : id)));
    // Along with each epoch, the run id of its server: the same epoch in another run is Redis back at an older state.
    const runs = read.map((key) => runIdOf(client, key, deps.infoDenied));
    // Each read is compared as soon as it answers, not once they all have (one may wait for a down master's timeout): a
    // loss stops this node's reaping before its round decides on a key of that shard (`reap` waits for this read). A
    // restart that kept the data stops it too: a snapshot saved a while ago holds the liveness keys as they were then,
    // some live nodes' expired since, and they are reaped unless they get a TTL to beat again.
    const compared = ids.map((id, i) =>
      Promise.all([id, runs[i]]).then(
        ([answer, run]) => {
          const last = epochs.get(read[i]!);
          const lastRun = runIds.get(read[i]!);
          const restarted = run !== undefined && lastRun !== undefined && run !== lastRun;
          if ((last !== undefined && last !== answer) || restarted) lossSeenAt = performance.now();
        },
        () => void readFailedAt.set(read[i]!, performance.now()),
      ),
    );
    /**
     * A shard is steady once its epoch key was read without a failure for a TTL. A master failing over (down until its
     * replica took over, longer than a TTL) let the live nodes' keys it held expire, while the survivors whose keys were
     * elsewhere kept beating: they reaped those nodes as soon as the replica served, before the nodes' next beat put their
     * keys back (member_removed for users who never left). The failed reads on the way say the shard was gone.
     */
    const steady = (keys: readonly string[]): boolean =>
      keys.every((k) => {
        const failed = readFailedAt.get(k);
        return failed === undefined || performance.now() - failed >= nodeTtlMs;
      });
    const epochRead = async (key: string): Promise<boolean> => {
      const master = masterOf(client, key);
      const i = master === undefined ? -1 : read.findIndex((k) => masterOf(client, k) === master);
      if (i >= 0) {
        await compared[i];
        return steady([read[i]!]);
      }
      // Its shard not known: steady only if every shard is.
      await Promise.all(compared);
      return steady(read);
    };
    try {
      // The epochs go with the beat; on a Redis Cluster the beat does not wait for them (the module's comment says why),
      // on a single Redis a failed read fails the beat.
      [before, added] = await Promise.all([beaten, listed, client.isCluster ? undefined : answers]);
    } catch (err) {
      continuousSince = undefined;
      if (failing === undefined) {
        failing = { since: performance.now(), failures: 1 };
        const error = err instanceof Error ? err.message : String(err);
        logEvent(
          logger,
          'warn',
          { event: 'node_heartbeat_failed', node: nodeId, error },
          "cluster engine: this node's heartbeat failed; it reaps no node until it has beaten again for a TTL",
        );
      } else failing.failures++;
      return undefined;
    }
    const now = performance.now();
    const gap = lastBeat === undefined ? undefined : now - lastBeat;
    if (failing !== undefined) {
      logEvent(
        logger,
        'info',
        { event: 'node_heartbeat_resumed', node: nodeId, failures: failing.failures, failed_for_ms: Math.round(now - failing.since) },
        "cluster engine: this node's heartbeat succeeded again",
      );
      failing = undefined;
    }
    // Its key missing at a beat that is not its first: it expired (or was deleted), so the others' keys may have too.
    const expired = gap !== undefined && before === null;
    if (gap === undefined || gap > nodeTtlMs / 2 || expired) continuousSince = now;
    else continuousSince ??= now;
    lastBeat = now;
    // Unlisted at a beat that is not its first, though its key was there: a reap that decided before this node beat again
    // finished after (a reap unlists its node last), and may have removed what the node had recorded again meanwhile.
    const unlisted = gap !== undefined && !expired && added === 1;
    // A reaper's id in its key: a reap that found this node back stopped, and may have removed what it recorded since.
    const halted = gap !== undefined && before !== null && before !== BEATING;
    const act = async (): Promise<void> => {
      const [current, currentRuns] = await Promise.all([answers, Promise.all(runs)]);
      // Another epoch than at the last beat that read it: Redis (on a Cluster, that key's shard) lost its data in between,
      // and with it this node's share there. The same epoch from another run of its server: Redis restarted with data
      // it loaded (a snapshot) or a replica took over, either of which can lack the last writes. Keys not read this beat
      // are forgotten (a tag given up), unless no key was read at all (no slot map yet) or a shard did not answer (its
      // last id kept).
      let dataLost = false;
      let restored = false;
      if (read.length > 0) {
        const next = new Map<string, string>();
        // Run ids are kept for keys not read (a master missing from the slot map for a while as it restarts): its key,
        // picked again, is then compared with the run before. A slot moved by resharding reads as a restart: pruned,
        // which removes nothing.
        const nextRuns = new Map(runIds);
        read.forEach((key, i) => {
          const epoch = current[i];
          const run = currentRuns[i];
          if (epoch !== undefined && epochs.has(key) && epochs.get(key) !== epoch) dataLost = true;
          // A run id is taken only with its key's epoch read: a read that failed while its server restarted, beside an
          // INFO the new run answered, would otherwise keep the new run id and see no restart once the read answers.
          else if (epoch !== undefined && run !== undefined && runIds.has(key) && runIds.get(key) !== run) restored = true;
          if (epoch !== undefined && run !== undefined) nextRuns.set(key, run);
          const id = epoch ?? epochs.get(key);
          if (id !== undefined) next.set(key, id);
        });
        epochs = next;
        runIds = nextRuns;
      }
      if (expired || unlisted || halted || dataLost || restored) deps.expired?.(dataLost || restored, restored);
      if (expired) await reportExpired(gap, added === 0);
    };
    // After the beats before it (a down shard's read of an earlier beat may fail after this beat's reads answered).
    const acted = acting.then(act).catch(() => undefined);
    acting = acted;
    return { acted, epochRead };
  }

  /**
   * One `node_expired` line, naming the node that holds this node's reap lock if one does (it reaped this node). Not for
   * a key gone within a TTL of the last beat while the node was not listed and no lock is held (Redis restarted empty):
   * no node could have reaped this one.
   */
  async function reportExpired(gap: number, wasListed: boolean): Promise<void> {
    const reapedBy = await client.get(keys.reapLock(nodeId)).catch(() => null);
    // This node is back: a lock left by its reap (held 60 s) would keep it from being reaped in time should it die now,
    // and would name a reaper again after a later outage that reaped nothing.
    if (reapedBy !== null) await client.del(keys.reapLock(nodeId)).catch(() => undefined);
    if (!wasListed && reapedBy === null && gap <= nodeTtlMs) return;
    logEvent(
      logger,
      'warn',
      { event: 'node_expired', node: nodeId, gap_ms: Math.round(gap), reaped_by: reapedBy },
      "cluster engine: this node's liveness key had expired; another node may have reaped its share",
    );
  }

  async function reapNode(id: string): Promise<void> {
    const span = startReapSpan(id);
    const started = performance.now();
    let back = false;
    // The node's key is there again: it beat since this reap decided (the module's comment says why the reap stops).
    const isBack = async (): Promise<boolean> => (back ||= (await client.exists(keys.node(id))) === 1);
    // What the reap removed, for its log line.
    const done = (channels: ReapedChannel[]) => ({
      members_removed: channels.reduce((n, c) => n + c.removedUsers.length, 0),
      channels: channels.length,
      channels_vacated: channels.filter((c) => c.vacated).length,
      duration_ms: Math.round(performance.now() - started),
    });
    try {
      let outcome: ReapOutcome;
      try {
        outcome = await deps.membership.reap(id, isBack);
      } catch (err) {
        // Its indexes could not be read: nothing was removed. Tried again soon, as an incomplete reap.
        await retrySoon(id);
        throw err;
      }
      const { channels } = outcome;
      if (back) {
        // Its next beat reads this id and records its share again (XX: a node that died again is left to expire). The
        // lock goes: the node's key keeps every reaper off while it lives, and once it expires the node is reaped in time.
        await Promise.all([client.set(keys.node(id), nodeId, 'PX', nodeTtlMs, 'XX'), client.del(keys.reapLock(id))]);
        const line: LogLine = { event: 'reap_stopped', back_node: id, ...done(channels) };
        withSpan(span, () => logEvent(deps.logger, 'info', line, 'reap stopped: the node is back'));
        deps.reaped(channels);
        return;
      }
      if (!outcome.complete) {
        // Some of its share is on a shard that failed: what was removed is announced now; the node stays listed with its
        // indexes whole, and a later attempt removes the rest (the module's comment).
        const line: LogLine = {
          event: 'reap_incomplete',
          dead_node: id,
          ...done(channels),
          channels_left: outcome.channelsLeft,
          apps_left: outcome.appsLeft,
          error: outcome.error ?? null,
        };
        withSpan(span, () => logEvent(deps.logger, 'warn', line, 'dead node reaped in part: a shard failed; tried again'));
        deps.reaped(channels);
        await retrySoon(id);
        return;
      }
      await client.srem(keys.nodes, id);
      const line: LogLine = { event: 'node_reaped', dead_node: id, ...done(channels) };
      // Written inside the span, so the line carries its trace id.
      withSpan(span, () => logEvent(deps.logger, 'info', line, 'dead node reaped'));
      deps.reaped(channels);
    } finally {
      span.end();
    }
  }

  /**
   * A reap that did not go through lets another attempt (by any survivor) take the lock a TTL from now rather than after
   * the 60 s: soon, but not at every beat, which would send each failing step to a shard that is down again each time.
   * Best effort: a lock that cannot be shortened (its own shard down) is held its 60 s.
   */
  async function retrySoon(id: string): Promise<void> {
    // Only while this node still holds it: a reap that outlasted its lock may find another survivor's there.
    await shortenLock.run(client, [keys.reapLock(id)], [nodeId, nodeTtlMs]).catch(() => undefined);
  }

  /** This node's reaps, one after the other (queued by the rounds that found their nodes dead). */
  let reaps: Promise<void> = Promise.resolve();
  /** The nodes queued or being reaped by this node: a round that finds one again leaves it to the reap under way. */
  const queued = new Set<string>();

  /** Reaps `id` once the reaps queued before it are over; resolves once it is over (never rejects). */
  function enqueue(id: string): Promise<void> {
    if (queued.has(id)) return Promise.resolve();
    queued.add(id);
    reaps = reaps.then(async () => {
      try {
        // Checked before each node: a beat that failed meanwhile (a tick during a long reap) stops the reaping. The key
        // is asked again: the reaps before this one may have taken a while.
        if (!mayReap() || (await client.exists(keys.node(id))) === 1) return;
        if ((await client.set(keys.reapLock(id), nodeId, 'PX', REAP_LOCK_MS, 'NX')) !== 'OK') return;
        await reapNode(id);
      } catch {
        // Redis went away mid-reap, or (a Redis Cluster with a master down) the node's lock or its indexes are on that
        // master: its reap stops there, holding the lock until it expires (a TTL, if it could be shortened; 60 s), when
        // a survivor takes it up again; the nodes queued after it are reaped all the same. (One of its channels on that
        // master does not stop it: RedisMembership.reap goes on past it.)
      } finally {
        queued.delete(id);
      }
    });
    return reaps;
  }

  /**
   * A look for dead nodes: every listed node's key asked at once, and each found missing queued for its reap as soon as
   * its answer comes. On a Redis Cluster with a master down, the EXISTS of a key there waits for the command timeout
   * before it fails: asked one after the other, or a round waiting for all of them before it reaps, they would hold every
   * round a second (one per such node), so a node dead meanwhile would be reaped that much late. A key that does not
   * answer is left (its node cannot be told dead: a later round, once its shard is back). A key found missing is queued
   * only once `beat`'s epoch read of its shard has been compared: had that shard lost its data, the key is missing for
   * that reason, and the loss stops the reaping (`mayReap`) before the reap decides. That read was sent before the
   * EXISTS, to the same master, so it has answered by then, or soon after if it was sent again after a NOSCRIPT (waiting
   * for all the beat's reads would wait for a down master's timeout). Never throws.
   */
  async function reap(beat: Beat): Promise<void> {
    if (!mayReap()) return;
    const ids = await client.smembers(keys.nodes).catch(() => [] as string[]);
    await Promise.all(
      ids.map(async (id) => {
        if (id === nodeId) return;
        const missing = await client.exists(keys.node(id)).then((n) => n === 0, () => false);
        if (!missing) return;
        // Its shard did not serve a while ago (a failover): its key may have expired with the node alive; a later round.
        if (!(await beat.epochRead(keys.node(id)))) return;
        await enqueue(id);
      }),
    );
  }

  return {
    async tick() {
      if (beating) return;
      beating = true;
      let beat: Beat | undefined;
      try {
        beat = await heartbeat();
      } finally {
        beating = false;
      }
      if (beat === undefined) return;
      await Promise.all([beat.acted, reap(beat)]);
    },
  };
}
