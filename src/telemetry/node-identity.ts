/**
 * The defaults of `DEPLOYMENT_ENV` and `NODE_ID`: the `env` and `node_id` of every log line (config.ts) and the telemetry
 * resource's `deployment.environment.name` and `service.instance.id` (otel/options.ts: `target_info`, spans), so a node's
 * metrics, traces and logs name it alike when neither is set.
 */
import { hostname } from 'node:os';

export const DEFAULT_DEPLOYMENT_ENV = 'development';

/** `hostname-pid`: unique per process on a host. */
export function defaultNodeId(): string {
  return `${hostname()}-${process.pid}`;
}
