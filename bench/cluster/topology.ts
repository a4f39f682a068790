/**
 * What a cluster benchmark runs against: a topology of Beacon nodes (compiled `dist/`, as `npm start` runs it) and the Redis
 * they share — none (one node, local adapter), one redis-server, or a 3-master Redis Cluster — each a fresh set of child
 * processes on free 127.0.0.1 ports, started by the test helpers' own starters. Every node serves /metrics (scraped every
 * second, as Prometheus would) because the sparse scenario reads `websocket_adapter_messages_total` from it; no traces.
 */
import { startRedisCluster } from '../../test/helpers/redis-cluster.js';
import { startRedis } from '../../test/helpers/redis.js';
import { startArgs } from '../../test/helpers/start-command.js';
import { spawnServer } from '../fanout/server-process.js';
import { freePort, ROOT } from '../fanout/targets.js';

/** Which topology. */
export type TopologyId = 'single-local' | 'single-redis' | 'three-redis' | 'three-redis-cluster';

/** How each topology is named in the results. */
export const TOPOLOGY_LABELS: Record<TopologyId, string> = {
  'single-local': '1 node, local adapter (no Redis)',
  'single-redis': '1 node on one Redis',
  'three-redis': '3 nodes on one Redis',
  'three-redis-cluster': '3 nodes on a 3-master Redis Cluster',
};

/** How many Beacon nodes each topology has. */
export const NODE_COUNT: Record<TopologyId, number> = {
  'single-local': 1,
  'single-redis': 1,
  'three-redis': 3,
  'three-redis-cluster': 3,
};

/** One running Beacon node. */
export interface NodeProcess {
  port: number;
  pid: number;
  metricsUrl: string;
  output(): string;
}

/** A running topology: its nodes, the ports of its redis-server processes (none without Redis), and how to stop it all. */
export interface Topology {
  id: TopologyId;
  nodes: NodeProcess[];
  redisPorts: number[];
  stop(): Promise<void>;
}

/** Generous: on the shared 2-core machine a node can take tens of seconds to start while other work runs. */
const READY_TIMEOUT_MS = 60_000;
const SCRAPE_EVERY_MS = 1000;

/** Starts one compiled Beacon node with `env` on top of the bench defaults; resolves once /readyz answers 200 (bounded). */
async function startNode(env: Record<string, string>): Promise<{ node: NodeProcess; stop: () => Promise<void> }> {
  const port = await freePort();
  let metricsPort = await freePort();
  while (metricsPort === port) metricsPort = await freePort();
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'LOKI_URL', 'APPS_FILE', 'OTEL_SDK_DISABLED', 'NODE_OPTIONS']) {
    delete childEnv[key];
  }
  Object.assign(childEnv, {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    METRICS_HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
    LOG_LEVEL: 'info',
    SHUTDOWN_GRACE_MS: '0',
    SHUTDOWN_TIMEOUT_MS: '3000',
    ...env,
  });
  const child = await spawnServer({
    label: 'beacon',
    args: startArgs(ROOT),
    cwd: ROOT,
    env: childEnv,
    port,
    readyTimeoutMs: READY_TIMEOUT_MS,
    graceMs: 5000,
  });
  const stop = (): Promise<void> => child.stop();
  return { node: { port, pid: child.pid, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`, output: child.output }, stop };
}

/** Starts topology `id`: its Redis first (if any), then its nodes one after another; everything is stopped on failure. */
export async function startTopology(id: TopologyId): Promise<Topology> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    // Nodes first (they drain and unlist themselves), Redis last.
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    let adapterEnv: Record<string, string> = { ADAPTER: 'local' };
    const redisPorts: number[] = [];
    if (id === 'single-redis' || id === 'three-redis') {
      const redis = await startRedis();
      stops.push(redis.stop);
      redisPorts.push(redis.port);
      adapterEnv = { ADAPTER: 'redis', REDIS_URL: redis.url };
    } else if (id === 'three-redis-cluster') {
      const cluster = await startRedisCluster();
      stops.push(cluster.stop);
      for (const n of cluster.nodes) redisPorts.push(n.port);
      adapterEnv = { ADAPTER: 'redis', REDIS_CLUSTER_NODES: cluster.env };
    }
    const nodes: NodeProcess[] = [];
    for (let i = 0; i < NODE_COUNT[id]; i++) {
      const started = await startNode({ ...adapterEnv, NODE_ID: `bench-${i}` });
      stops.push(started.stop);
      nodes.push(started.node);
    }
    const scraper = setInterval(() => {
      for (const n of nodes) void fetch(n.metricsUrl, { signal: AbortSignal.timeout(5000) }).then((r) => r.arrayBuffer()).catch(() => undefined);
    }, SCRAPE_EVERY_MS);
    return {
      id,
      nodes,
      redisPorts,
      stop: async () => {
        clearInterval(scraper);
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
