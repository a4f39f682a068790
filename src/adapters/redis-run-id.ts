/**
 * Which run of its Redis server a key's data lives in: `INFO server`'s `run_id`, a random id each server process draws
 * when it starts. A key whose server's run id changed while the key kept its value was loaded from a snapshot (RDB or
 * AOF) or held by a replica promoted in its master's place: either may lack the last writes before the change, and what
 * left since is back (redis-reaper.ts tells the engine, which prunes its share: redis-adapter.ts).
 */
import type { Cluster, Redis } from 'ioredis';
import { readInfo, type InfoDenied } from './redis-info.js';
import { masterOf } from './redis-membership.js';

/**
 * The run id of the server holding `key` (the master serving its slot, on a Redis Cluster), or undefined when it cannot
 * be read (that master unknown or not answering, INFO refused: `denied` told). Never rejects.
 */
export async function runIdOf(client: Redis | Cluster, key: string, denied?: InfoDenied): Promise<string | undefined> {
  let server: Redis | undefined = client as Redis;
  if (client.isCluster) {
    const master = masterOf(client, key);
    server = (client as Cluster).nodes('master').find((node) => `${node.options.host}:${node.options.port}` === master);
  }
  const info = server === undefined ? undefined : await readInfo(server, 'server', denied);
  return info === undefined ? undefined : /^run_id:(\w+)/m.exec(info)?.[1];
}
