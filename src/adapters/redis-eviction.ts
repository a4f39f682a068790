/**
 * Whether Redis may evict Beacon's keys. Under an `allkeys-*` policy a Redis at its `maxmemory` evicts whatever was used
 * least lately: a live node's share of the cluster state (its members, its subscriptions) goes while the keys read every
 * beat (the epoch, the liveness keys) stay, so nothing tells a loss, and presence lists, counts and `member_removed` are
 * wrong for good (a probe: 10 members listed as 5, a leaver never announced). Under a `volatile-*` policy the keys with a
 * time to live go first (liveness keys, cached events): seen, but the nodes re-record their shares every beat. Beacon
 * needs `noeviction` (docs/scaling.md): the node checks each time the engine comes up, and says so once per server and
 * policy it finds (redis-adapter.ts).
 */
import { Cluster, type Redis } from 'ioredis';
import { readInfo, serverName, type InfoDenied } from './redis-info.js';

/** A Redis server (a master of a Redis Cluster) whose policy may evict keys. */
export interface EvictingServer {
  server: string;
  policy: string;
  /** Its `maxmemory` in bytes; 0: no limit set (yet: `CONFIG SET` can set one at any time). */
  maxmemory: number;
}

/** Reads `INFO memory` of each server (each master); a server that does not answer (or refuses) is skipped. Never rejects. */
export async function evictingServers(client: Redis | Cluster, denied?: InfoDenied): Promise<EvictingServer[]> {
  const servers = client instanceof Cluster ? client.nodes('master') : [client];
  const found: EvictingServer[] = [];
  await Promise.all(
    servers.map(async (redis) => {
      const info = await readInfo(redis, 'memory', denied);
      const policy = info === undefined ? undefined : /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
      if (policy === undefined || policy === 'noeviction') return;
      const maxmemory = Number(/^maxmemory:(\d+)/m.exec(info!)?.[1] ?? 0);
      found.push({ server: serverName(redis), policy, maxmemory });
    }),
  );
  return found;
}
