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
 * A node whose own key had expired when it beats again (found missing by the EXISTS sent just before the SET, on the
 * same connection) says so once (`node_expired`, warn): another node may have reaped its share, or Redis restarted empty;
 * `expired` has the engine record its share again (redis-adapter.ts).
 * A heartbeat that fails is logged once per episode (`node_heartbeat_failed`), its end once (`node_heartbeat_resumed`).
 */
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../telemetry/logger.js';
import { logEvent, type LogLine } from '../telemetry/log-events.js';
import { startReapSpan, withSpan } from '../telemetry/tracing.js';
import type { ReapedChannel } from './adapter.js';
import type { RedisKeys } from './redis-keys.js';
import type { RedisMembership } from './redis-membership.js';

/** How long a reaper holds a dead node's lock; another survivor retries after it if the reaper died too. */
const REAP_LOCK_MS = 60_000;

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
   * This node's own key had expired when it beat again, or it found itself unlisted (a reap finished): its share of the
   * cluster state may be gone (redis-adapter.ts records it again).
   */
  expired?: () => void;
}

/** A heartbeat failure episode: when it began and how many beats failed. */
interface Failing {
  since: number;
  failures: number;
}

/**
 * Heartbeat then reap, once; never throws (a failed tick is retried by the next one). A tick that comes while the previous
 * one is still reaping only beats, so a long reap never lets this node's own key expire.
 */
export function createReaper(deps: ReaperDeps): { tick: () => Promise<void> } {
  const { client, keys, nodeId, nodeTtlMs, logger } = deps;
  let beating = false;
  let reaping = false;
  /** When the last heartbeat succeeded (its reply), none yet: undefined. */
  let lastBeat: number | undefined;
  /** When the current run of continuous heartbeats began (undefined: broken by a failure); it may reap a TTL after. */
  let continuousSince: number | undefined;
  let failing: Failing | undefined;

  /** Whether this node may take an expired key for a dead node: its own beats have been continuous for a TTL. */
  const mayReap = (): boolean =>
    continuousSince !== undefined &&
    lastBeat !== undefined &&
    performance.now() - continuousSince >= nodeTtlMs &&
    performance.now() - lastBeat <= nodeTtlMs / 2;

  /** Refreshes this node's key and listing; false when Redis refused it. */
  async function heartbeat(): Promise<boolean> {
    const key = keys.node(nodeId);
    let existed: number;
    let added: number;
    try {
      // EXISTS goes before the SET on the same connection (one key, so one slot on a Redis Cluster too): it tells whether
      // the key had expired. SET … GET would do it in one command but needs Redis 6.2.
      [existed, , added] = await Promise.all([
        client.exists(key),
        client.set(key, '1', 'PX', nodeTtlMs),
        client.sadd(keys.nodes, nodeId),
      ]);
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
      return false;
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
    const expired = gap !== undefined && existed === 0;
    if (gap === undefined || gap > nodeTtlMs / 2 || expired) continuousSince = now;
    else continuousSince ??= now;
    lastBeat = now;
    // Unlisted at a beat that is not its first, though its key was there: a reap that decided before this node beat again
    // finished after (a reap unlists its node last), and may have removed what the node had recorded again meanwhile.
    const unlisted = gap !== undefined && !expired && added === 1;
    if (expired || unlisted) deps.expired?.();
    if (expired) await reportExpired(gap, added === 0);
    return true;
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
    try {
      const channels = await deps.membership.reap(id);
      await client.srem(keys.nodes, id);
      const line: LogLine = {
        event: 'node_reaped',
        dead_node: id,
        members_removed: channels.reduce((n, c) => n + c.removedUsers.length, 0),
        channels: channels.length,
        channels_vacated: channels.filter((c) => c.vacated).length,
        duration_ms: Math.round(performance.now() - started),
      };
      // Written inside the span, so the line carries its trace id.
      withSpan(span, () => logEvent(deps.logger, 'info', line, 'dead node reaped'));
      deps.reaped(channels);
    } finally {
      span.end();
    }
  }

  async function reapDead(): Promise<void> {
    for (const id of await client.smembers(keys.nodes)) {
      // Checked before each node: a beat that failed meanwhile (a tick during a long reap) stops the round.
      if (!mayReap()) return;
      if (id === nodeId || (await client.exists(keys.node(id))) === 1) continue;
      if ((await client.set(keys.reapLock(id), nodeId, 'PX', REAP_LOCK_MS, 'NX')) !== 'OK') continue;
      await reapNode(id);
    }
  }

  return {
    async tick() {
      if (beating) return;
      beating = true;
      let beat: boolean;
      try {
        beat = await heartbeat();
      } finally {
        beating = false;
      }
      if (!beat || reaping || !mayReap()) return;
      reaping = true;
      try {
        await reapDead();
      } catch {
        // Redis went away mid-reap: the next tick tries again; a lock taken expires and a survivor finishes that reap.
      } finally {
        reaping = false;
      }
    },
  };
}
