/**
 * Builds the NodeSDK from resolved `TelemetryOptions`: the Prometheus exporter, the OTLP trace pipeline (only when an
 * endpoint is configured; spans sent from a worker thread, otel/worker-span-exporter.ts), the Node runtime
 * instrumentation, and the resource. Kept apart from `register.ts` so the entry file is only the ordering (guards → SDK →
 * start).
 */
import { diag } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import {
  defaultResource,
  detectResources,
  envDetector,
  hostDetector,
  processDetector,
  resourceFromAttributes,
  type Resource,
} from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { processTables } from '../src/telemetry/histogram-table.js';
import { METRIC_VIEWS } from '../src/telemetry/metrics.js';
import { BatchSpanProcessor, ConsoleSpanExporter, RandomIdGenerator, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { RootSampling } from '../src/telemetry/root-sampling.js';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { TelemetryOptions } from './options.js';
import { VERSION } from '../src/version.js';
import { installDiagLogger } from './diagnostics.js';
import { presampledParentBasedSampler } from './presampled-root-sampler.js';
import { RuntimeInstrumentation } from './runtime-instrumentation.js';
import { SyncContextManager } from './sync-context-manager.js';
import { WorkerSpanExporter } from './worker-span-exporter.js';
import { CountedBatchSpanProcessor } from './counted-span-processor.js';

/**
 * Routes the SDK's own diagnostics to stderr (otel/diagnostics.ts) and reports the problems `telemetryOptionsFromEnv`
 * found. Call first.
 */
export function installDiagnostics(options: TelemetryOptions): void {
  installDiagLogger({ consoleWhenLevelSet: false });
  for (const warning of options.warnings) diag.warn(warning);
}

/**
 * The resource: Beacon's attributes, overridden by the detectors (OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME, process,
 * host). Detected here and awaited, rather than by NodeSDK, because the host detector settles asynchronously and a scrape
 * before it settled would log an error and serve an incomplete `target_info`.
 */
export async function detectTelemetryResource(options: TelemetryOptions): Promise<Resource> {
  const attributes: Record<string, string> = { ...options.resourceAttributes };
  attributes[ATTR_SERVICE_VERSION] = VERSION;
  const detected = detectResources({ detectors: [envDetector, processDetector, hostDetector] });
  await detected.waitForAsyncAttributes?.();
  const resource = defaultResource().merge(resourceFromAttributes(attributes)).merge(detected);
  // The default goes over what was detected: a blank `service.name=` (or OTEL_SERVICE_NAME) is taken by the detector as
  // the name "", while the log lines, whose Loki label cannot be empty, say the default (otel/options.ts).
  if (options.defaultServiceName === undefined) return resource;
  return resource.merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.defaultServiceName }));
}

/** Creates (does not start) the SDK described by `options`. */
export function createTelemetrySdk(
  options: TelemetryOptions,
  resource: Resource,
): {
  sdk: NodeSDK;
  prometheus: PrometheusExporter | undefined;
  rootSampling: RootSampling | undefined;
  /** The OTLP pipeline's span processor, to `build()` once the SDK has started (otel/counted-span-processor.ts). */
  exportedSpans: CountedBatchSpanProcessor | undefined;
} {
  const spanProcessors: SpanProcessor[] = [];
  let exportedSpans: CountedBatchSpanProcessor | undefined;
  if (options.traces !== undefined) {
    // Serialised here, sent from a worker thread (otel/span-export-worker.ts says why), which reads the endpoint,
    // headers, timeout and compression from the standard OTEL_EXPORTER_OTLP_* variables.
    const exporter = new WorkerSpanExporter(options.traces.protocol);
    // Batching (OTEL_BSP_* variables) keeps export off the request path; a full queue drops spans instead of blocking,
    // and counts them (otel_sdk_processor_span_processed_total{error_type="queue_full"}, otel/counted-span-processor.ts).
    exportedSpans = new CountedBatchSpanProcessor(exporter);
    spanProcessors.push(exportedSpans);
  }
  if (options.consoleTraces) spanProcessors.push(new BatchSpanProcessor(new ConsoleSpanExporter()));

  const prometheus =
    options.metrics === undefined
      ? undefined
      : new PrometheusExporter(
          {
            host: options.metrics.host,
            port: options.metrics.port,
            // No otel_scope_* labels (docs/telemetry.md). target_info stays: it carries the resource (service, version,
            // instance) once per target, for joins such as `… * on(job, instance) group_left(service_version) target_info`.
            withoutScopeInfo: true,
            // Beacon's histograms, counters and gauges are kept outside the SDK (src/telemetry/histogram-table.ts) and
            // read at each scrape.
            metricProducers: [processTables],
            // Served by otel/metrics-server.ts (register.ts starts it), not by the exporter's own server.
            preventServerStart: true,
          },
        );

  // parentbased_traceidratio is built here rather than by the SDK, with a root sampler that records the roots Beacon's own
  // draw kept (src/telemetry/root-sampling.ts); register.ts registers the draw once the SDK has started.
  const idGenerator = new RandomIdGenerator();
  const rootSampling = options.rootRatio === undefined ? undefined : { ratio: options.rootRatio, ids: idGenerator };
  const sdk = new NodeSDK({
    resource,
    ...(rootSampling === undefined ? {} : { sampler: presampledParentBasedSampler(rootSampling.ratio), idGenerator }),
    autoDetectResources: false,
    // An empty list means "no tracer provider": no span is recorded and no exporter exists (see options.ts).
    spanProcessors,
    metricReaders: prometheus === undefined ? [] : [prometheus],
    // Beacon's instruments without the SDK's 2 000-series limit, whose overflow series is wrong (src/telemetry/metrics.ts).
    views: METRIC_VIEWS,
    // Logs go through pino (stdout, Loki); the SDK must not default to an OTLP log exporter.
    logRecordProcessors: [],
    // No async-hook context manager, even when traces are exported: every Beacon span gets its parent explicitly (the
    // API request's span, the envelope's or the frame's `traceparent`), and log lines read the active span only inside
    // synchronous `withSpan` runs. AsyncLocalStorage runs a hook for every async resource on Node 20 (each socket write),
    // which was most of the measured cost of tracing (bench/RESULTS.md, telemetry-cost). There is no HTTP
    // instrumentation either: it wrapped every request and response whatever the sampling decision; the API's server span
    // comes from a fastify hook (src/http/api.ts).
    contextManager: new SyncContextManager(),
    // The runtime instrumentation without its per-scrape listing of every handle (otel/runtime-instrumentation.ts).
    instrumentations: [new RuntimeInstrumentation()],
  });
  return { sdk, prometheus, rootSampling, exportedSpans };
}
