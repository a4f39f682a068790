/** `/healthz` (the process serves) and `/readyz` (it should get traffic: not draining, cluster engine up). */
import type { FastifyInstance } from 'fastify';
import type { AdapterStatus } from '../adapters/adapter.js';

export interface HealthOptions {
  /** When the server started, in `performance.now()` milliseconds (the wall clock can step). */
  startedAt: number;
  isDraining: () => boolean;
  adapterStatus: () => Pick<AdapterStatus, 'adapter' | 'up'>;
}

export function registerHealthRoutes(fastify: FastifyInstance, options: HealthOptions): void {
  fastify.get('/healthz', async () => ({
    status: 'healthy',
    timestamp: new Date().toISOString(),
    uptime: (performance.now() - options.startedAt) / 1000,
  }));
  fastify.get('/readyz', async (_request, reply) => {
    const draining = options.isDraining();
    const adapter = options.adapterStatus();
    const ready = !draining && adapter.up;
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not_ready',
      ready,
      shutting_down: draining,
      checks: { adapter: { name: adapter.adapter, up: adapter.up }, draining },
    });
  });
}
