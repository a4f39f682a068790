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
 */
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
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

/** Resolves the bootstrap's options from `env`. */
export function telemetryOptionsFromEnv(env: NodeJS.ProcessEnv): TelemetryOptions {
  const warnings: string[] = [];
  const disabled = nonEmpty(env.OTEL_SDK_DISABLED)?.toLowerCase() === 'true';

  const namedInAttributes = (env.OTEL_RESOURCE_ATTRIBUTES ?? '')
    .split(',')
    .some((pair) => pair.split('=')[0]?.trim() === ATTR_SERVICE_NAME);
  const defaultServiceName = nonEmpty(env.OTEL_SERVICE_NAME) === undefined && !namedInAttributes ? 'beacon' : undefined;

  const resourceAttributes: Record<string, string> = {};
  const deploymentEnv = nonEmpty(env.DEPLOYMENT_ENV);
  if (deploymentEnv !== undefined) resourceAttributes[ATTR_DEPLOYMENT_ENVIRONMENT_NAME] = deploymentEnv;
  const nodeId = nonEmpty(env.NODE_ID);
  if (nodeId !== undefined) resourceAttributes[ATTR_SERVICE_INSTANCE_ID] = nodeId;

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

  let metrics: TelemetryOptions['metrics'];
  if (!list(env.OTEL_METRICS_EXPORTER).includes('none')) {
    const host =
      nonEmpty(env.METRICS_HOST) ?? nonEmpty(env.OTEL_EXPORTER_PROMETHEUS_HOST) ?? DEFAULT_METRICS_HOST;
    const rawPort = nonEmpty(env.METRICS_PORT) ?? nonEmpty(env.OTEL_EXPORTER_PROMETHEUS_PORT);
    let port = DEFAULT_METRICS_PORT;
    if (rawPort !== undefined) {
      const n = Number(rawPort);
      // Port 0 is refused: the exporter treats 0 as "unset" and would silently listen on 9464.
      if (Number.isInteger(n) && n >= 1 && n <= 65535) port = n;
      else warnings.push(`metrics port "${rawPort}" is invalid; using ${DEFAULT_METRICS_PORT}`);
    }
    metrics = { host, port };
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
  };
}
