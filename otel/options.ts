/**
 * The OpenTelemetry bootstrap's reading of the environment: the standard `OTEL_*` variables plus Beacon's `METRICS_HOST`/
 * `METRICS_PORT`. Pure (env in, options out) so it is testable without starting an SDK.
 *
 * Decisions written down here because operators depend on them:
 * - `OTEL_SDK_DISABLED=true` switches everything off: no SDK, no ESM hook, no `/metrics` server, no spans.
 * - Traces are exported only when an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
 *   `OTEL_EXPORTER_OTLP_ENDPOINT`) and `OTEL_TRACES_EXPORTER` does not say `none`. Without one no tracer provider, no
 *   HTTP instrumentation and no async-hook context manager are installed: no span is recorded, nothing is sent, and their
 *   per-request and per-async-resource cost is not paid (bench/RESULTS.md, telemetry-cost).
 * - Metrics are always served by the Prometheus exporter (pull), unless `OTEL_METRICS_EXPORTER=none`; OTLP metric push is
 *   not offered: Prometheus scrapes every node.
 * - Beacon's own `METRICS_HOST` / `METRICS_PORT` are validated as src/config.ts validates the rest: an invalid value is an
 *   error that stops the process (otel/register.ts), not a warning — a node running without the /metrics its scrape
 *   config points at is invisible. The standard `OTEL_*` variables (`OTEL_EXPORTER_PROMETHEUS_HOST`/`_PORT` included) keep
 *   the OpenTelemetry specification's rule: an invalid value is reported and its default used.
 */
import { isIP } from 'node:net';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { isListenHost } from '../src/listen-address.js';
import { DEFAULT_DEPLOYMENT_ENV, defaultNodeId, resourceAttributesFromEnv } from '../src/telemetry/node-identity.js';
import { ATTR_DEPLOYMENT_ENVIRONMENT_NAME, ATTR_SERVICE_INSTANCE_ID } from '../src/telemetry/semconv.js';

/** Wire format of the OTLP trace exporter. */
export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** Everything the SDK factory needs, resolved from the environment. */
export interface TelemetryOptions {
  disabled: boolean;
  /** Set only when neither `OTEL_SERVICE_NAME` nor `service.name` in `OTEL_RESOURCE_ATTRIBUTES` names the service. */
  defaultServiceName: string | undefined;
  /** Resource attributes Beacon adds under the standard ones (which override them). */
  resourceAttributes: Record<string, string>;
  traces: { protocol: OtlpProtocol } | undefined;
  consoleTraces: boolean;
  metrics: { host: string; port: number } | undefined;
  /**
   * The ratio of `OTEL_TRACES_SAMPLER=parentbased_traceidratio` when spans are recorded (an OTLP or console exporter): Beacon
   * then builds that sampler itself and draws root spans before the SDK (src/telemetry/root-sampling.ts). Undefined for any
   * other sampler, which the SDK builds from the environment as usual.
   */
  rootRatio: number | undefined;
  /** Problems found while reading the environment, reported once the process can log them. */
  warnings: string[];
  /**
   * Invalid values of Beacon's own variables, each `VARIABLE: what was expected` as src/config.ts words them: the process
   * refuses to start on any (otel/register.ts).
   */
  errors: string[];
}

const DEFAULT_METRICS_HOST = '0.0.0.0';
const DEFAULT_METRICS_PORT = 9464;

const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');

const nonEmpty = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === '' ? undefined : value.trim();

/** The SDK's ratio for every sampler value it builds from the environment: blank, not a number or outside [0, 1] is 1. */
const DEFAULT_SAMPLER_RATIO = 1;

/**
 * `OTEL_TRACES_SAMPLER_ARG` read as the SDK reads it (@opentelemetry/sdk-node's createSamplerFromEnv: the value matched
 * exactly as given, `Number()` of the argument), with the same warnings, since Beacon builds this sampler in its place.
 */
export function samplerRatio(raw: string | undefined, warnings: string[]): number {
  if (raw === undefined || raw.trim() === '') {
    warnings.push(`OTEL_TRACES_SAMPLER_ARG is blank, defaulting to ${DEFAULT_SAMPLER_RATIO}.`);
    return DEFAULT_SAMPLER_RATIO;
  }
  const ratio = Number(raw);
  if (Number.isNaN(ratio)) {
    warnings.push(`Unknown value "${raw}" for OTEL_TRACES_SAMPLER_ARG, expected a number; defaulting to ${DEFAULT_SAMPLER_RATIO}.`);
    return DEFAULT_SAMPLER_RATIO;
  }
  if (ratio < 0 || ratio > 1) {
    warnings.push(`OTEL_TRACES_SAMPLER_ARG=${ratio} was given, but it is out of range ([0..1]), defaulting to ${DEFAULT_SAMPLER_RATIO}.`);
    return DEFAULT_SAMPLER_RATIO;
  }
  return ratio;
}

/**
 * A port the metrics server can be told to listen on: 1 to 65535 in decimal digits, as src/config.ts reads every number
 * (`0x4BC9` or `1e4` is refused); 0 is refused too: nobody could scrape a port chosen at random.
 */
function isMetricsPort(value: string): boolean {
  const n = Number(value);
  return /^\s*\d+\s*$/.test(value) && n >= 1 && n <= 65535;
}


/**
 * Where `/metrics` listens. `METRICS_HOST` / `METRICS_PORT` are Beacon's: an invalid one is an error. Unset, the standard
 * `OTEL_EXPORTER_PROMETHEUS_HOST` / `_PORT` are read as the specification says: an invalid one is a warning and the default.
 */
function metricsAddressFromEnv(env: NodeJS.ProcessEnv, warnings: string[], errors: string[]): { host: string; port: number } {
  // Empty is unset; blank (a template that filled in a space) is refused, as src/config.ts refuses `HOST=" "`.
  if (isBlank(env.METRICS_HOST)) errors.push('METRICS_HOST: blank');
  if (isBlank(env.METRICS_PORT)) errors.push('METRICS_PORT: blank');
  const ownHost = nonEmpty(env.METRICS_HOST);
  if (ownHost !== undefined && !isListenHost(ownHost)) errors.push(`METRICS_HOST: not an IP address or host name: "${ownHost}"`);
  const standardHost = nonEmpty(env.OTEL_EXPORTER_PROMETHEUS_HOST);
  let host = ownHost ?? standardHost ?? DEFAULT_METRICS_HOST;
  if (ownHost === undefined && standardHost !== undefined && !isListenHost(standardHost)) {
    warnings.push(`OTEL_EXPORTER_PROMETHEUS_HOST "${standardHost}" is invalid; using ${DEFAULT_METRICS_HOST}`);
    host = DEFAULT_METRICS_HOST;
  }

  const ownPort = nonEmpty(env.METRICS_PORT);
  if (ownPort !== undefined) {
    if (!isMetricsPort(ownPort)) errors.push(`METRICS_PORT: not a port from 1 to 65535: "${ownPort}"`);
    return { host, port: Number(ownPort) };
  }
  const standardPort = nonEmpty(env.OTEL_EXPORTER_PROMETHEUS_PORT);
  if (standardPort === undefined) return { host, port: DEFAULT_METRICS_PORT };
  if (isMetricsPort(standardPort)) return { host, port: Number(standardPort) };
  warnings.push(`OTEL_EXPORTER_PROMETHEUS_PORT "${standardPort}" is invalid; using ${DEFAULT_METRICS_PORT}`);
  return { host, port: DEFAULT_METRICS_PORT };
}

const isBlank = (value: string | undefined): boolean => value !== undefined && value !== '' && value.trim() === '';

/**
 * Whether two listen addresses take the same port: the same address, `::` (both families on Linux) and anything, or
 * `0.0.0.0` and an IPv4 address or a name (which may resolve to one).
 */
function overlap(a: string, b: string): boolean {
  if (a === b || a === '::' || b === '::') return true;
  return (a === '0.0.0.0' && isIP(b) !== 6) || (b === '0.0.0.0' && isIP(a) !== 6);
}

/**
 * `/metrics` on the port the WebSocket and API server listens on (`HOST`/`PORT`, src/config.ts; `PORT` 6001 unless set):
 * the second listener failed with EADDRINUSE naming HOST/PORT only. Said here, naming both.
 */
function sharesServerPort(env: NodeJS.ProcessEnv, metrics: { host: string; port: number }): boolean {
  const port = env.PORT?.trim() ?? '';
  const serverPort = port === '' ? 6001 : /^\d+$/.test(port) ? Number(port) : undefined;
  if (serverPort === undefined || serverPort === 0 || serverPort !== metrics.port) return false;
  const serverHost = nonEmpty(env.HOST) ?? '0.0.0.0';
  return overlap(serverHost, metrics.host);
}

/** Resolves the bootstrap's options from `env`. */
export function telemetryOptionsFromEnv(env: NodeJS.ProcessEnv): TelemetryOptions {
  const warnings: string[] = [];
  const disabled = nonEmpty(env.OTEL_SDK_DISABLED)?.toLowerCase() === 'true';

  // Read as the SDK's detector reads it (src/config.ts reads it the same way for the log lines): a malformed list names
  // nothing, since the SDK then takes none of it.
  // A blank name names nothing, as for the log lines (src/config.ts): no Loki label can be empty.
  const namedInAttributes = nonEmpty(resourceAttributesFromEnv(env.OTEL_RESOURCE_ATTRIBUTES).get(ATTR_SERVICE_NAME)) !== undefined;
  const defaultServiceName = nonEmpty(env.OTEL_SERVICE_NAME) === undefined && !namedInAttributes ? 'beacon' : undefined;

  // With the defaults of the log lines' `env` and `node_id` (src/config.ts): the same process, the same names.
  const resourceAttributes: Record<string, string> = {
    [ATTR_DEPLOYMENT_ENVIRONMENT_NAME]: nonEmpty(env.DEPLOYMENT_ENV) ?? DEFAULT_DEPLOYMENT_ENV,
    [ATTR_SERVICE_INSTANCE_ID]: nonEmpty(env.NODE_ID) ?? defaultNodeId(),
  };

  const exporters = list(env.OTEL_TRACES_EXPORTER);
  const wantsOtlp = exporters.length === 0 || exporters.includes('otlp');
  const endpoint = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ?? nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  let traces: TelemetryOptions['traces'];
  if (wantsOtlp && !exporters.includes('none') && endpoint !== undefined) {
    const protocol =
      nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) ?? nonEmpty(env.OTEL_EXPORTER_OTLP_PROTOCOL) ?? 'http/protobuf';
    if (protocol === 'http/protobuf' || protocol === 'http/json') {
      traces = { protocol };
    } else {
      warnings.push(`OTLP traces protocol "${protocol}" is not supported; using http/protobuf`);
      traces = { protocol: 'http/protobuf' };
    }
  }
  for (const name of exporters) {
    if (!['otlp', 'console', 'none'].includes(name)) warnings.push(`OTEL_TRACES_EXPORTER "${name}" is not supported`);
  }

  const consoleTraces = exporters.includes('console');
  const rootRatio =
    (traces !== undefined || consoleTraces) && env.OTEL_TRACES_SAMPLER === 'parentbased_traceidratio'
      ? samplerRatio(env.OTEL_TRACES_SAMPLER_ARG, warnings)
      : undefined;

  const errors: string[] = [];
  const metricsAddress = metricsAddressFromEnv(env, warnings, errors);
  const metricsExporters = list(env.OTEL_METRICS_EXPORTER);
  const metrics = metricsExporters.includes('none') ? undefined : metricsAddress;
  for (const name of metricsExporters) {
    if (name !== 'prometheus' && name !== 'none') {
      warnings.push(`OTEL_METRICS_EXPORTER "${name}" is not supported: metrics are served for Prometheus on /metrics`);
    }
  }
  if (!disabled && metrics !== undefined && sharesServerPort(env, metrics)) {
    errors.push(`METRICS_PORT: ${metrics.port} is PORT's too (the WebSocket and HTTP API server's): give /metrics a port of its own`);
  }

  return {
    disabled,
    defaultServiceName,
    resourceAttributes,
    traces,
    consoleTraces,
    metrics,
    rootRatio,
    warnings,
    errors,
  };
}
