/**
 * The defaults of `DEPLOYMENT_ENV` and `NODE_ID`: the `env` and `node_id` of every log line (config.ts) and the telemetry
 * resource's `deployment.environment.name` and `service.instance.id` (otel/options.ts: `target_info`, spans), so a node's
 * metrics, traces and logs name it alike when neither is set; and what `OTEL_RESOURCE_ATTRIBUTES` says of the same names,
 * which the resource takes over Beacon's own, so the log lines take it too.
 */
import { hostname } from 'node:os';

export const DEFAULT_DEPLOYMENT_ENV = 'development';

/** `hostname-pid`: unique per process on a host. */
export function defaultNodeId(): string {
  return `${hostname()}-${process.pid}`;
}

/** The longest key or value the SDK's environment detector takes. */
const MAX_ATTRIBUTE_LENGTH = 255;

/**
 * The attributes `OTEL_RESOURCE_ATTRIBUTES` sets (`key=value,…`, both percent-encoded), read as the SDK's environment
 * detector reads them: one malformed entry (no `=` or more than one, an empty key, a bad escape, over 255 characters)
 * and none is taken, as the SDK then takes none.
 */
export function resourceAttributesFromEnv(value: string | undefined): ReadonlyMap<string, string> {
  const attributes = new Map<string, string>();
  for (const entry of (value ?? '').split(',')) {
    if (entry.trim() === '') continue;
    const parts = entry.split('=');
    const key = parts[0]?.trim() ?? '';
    if (parts.length !== 2 || key === '') return new Map();
    try {
      const decodedKey = decodeURIComponent(key);
      const decodedValue = decodeURIComponent(parts[1]!.trim());
      if (decodedKey.length > MAX_ATTRIBUTE_LENGTH || decodedValue.length > MAX_ATTRIBUTE_LENGTH) return new Map();
      attributes.set(decodedKey, decodedValue);
    } catch {
      return new Map();
    }
  }
  return attributes;
}
