/**
 * Liveness and reaping for the Redis engine. Each tick (a third of the node TTL) refreshes this node's liveness key, then
 * looks for listed nodes whose key expired; for each, the survivor that takes its lock (`SET NX PX`) removes its share of
 * the cluster state (RedisMembership.reap), unlists it, and records it as one `reap node` span and one `node_reaped` line.
 * A reaper that dies mid-way leaves the lock to expire and the node listed, so another survivor finishes the job.
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
  logger: Pick<Logger, 'info'>;
  nodeId: string;
  nodeTtlMs: number;
  /** Receives what a reap changed (webhooks). */
  reaped: (channels: ReapedChannel[]) => void;
}

/** Heartbeat then reap, once; never throws (a failed tick is retried by the next one). */
export function createReaper(deps: ReaperDeps): { tick: () => Promise<void> } {
  const { client, keys, nodeId } = deps;
  let running = false;

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

  return {
    async tick() {
      if (running) return;
      running = true;
      try {
        await Promise.all([client.set(keys.node(nodeId), '1', 'PX', deps.nodeTtlMs), client.sadd(keys.nodes, nodeId)]);
        for (const id of await client.smembers(keys.nodes)) {
          if (id === nodeId || (await client.exists(keys.node(id))) === 1) continue;
          if ((await client.set(keys.reapLock(id), nodeId, 'PX', REAP_LOCK_MS, 'NX')) !== 'OK') continue;
          await reapNode(id);
        }
      } catch {
        // Redis went away mid-tick: the next tick (after adapter_up) tries again.
      } finally {
        running = false;
      }
    },
  };
}
