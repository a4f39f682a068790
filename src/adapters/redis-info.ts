/**
 * `INFO <section>` of one Redis server, for what Beacon reads there: the run id (redis-run-id.ts: a Redis back at an older
 * state) and the eviction policy (redis-eviction.ts). A user whose ACL denies INFO — `-@dangerous`, as managed Redis often
 * hands out — answers NOPERM, and both checks are then off: `denied` is told (the engine says it once per server,
 * `adapter_info_denied`), where a probe found them off with nothing said.
 */
import type { Redis } from 'ioredis';

/** Told the server (`host:port`, or `redis` through Sentinels) that refused INFO to this user. */
export type InfoDenied = (server: string) => void;

/** The server's name in log lines: its address as configured, or `redis` when Sentinels name it. */
export function serverName(redis: Redis): string {
  const { host, port } = redis.options;
  return redis.options.sentinels ? 'redis' : `${host}:${port}`;
}

/** The section's text, or undefined when it cannot be read (refused, not answering). Never rejects. */
export async function readInfo(server: Redis, section: string, denied?: InfoDenied): Promise<string | undefined> {
  try {
    return await server.info(section);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('NOPERM')) denied?.(serverName(server));
    return undefined;
  }
}
