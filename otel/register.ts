/**
 * The OpenTelemetry bootstrap, loaded before the app:
 *   node --max-semi-space-size=32 --enable-source-maps --import ./dist/otel/register.js dist/src/main.js   (`npm start`)
 *   node --import tsx --import ./otel/register.ts src/main.ts         (development and tests)
 *
 * The SDK starts before the app's first `import` (this module's top-level `await` holds the app back until then), so the
 * metrics server and the tracer provider exist when the app creates its instruments. No ESM loader hook
 * (import-in-the-middle) is registered: no instrumentation here patches a module (Beacon's spans are its own, the runtime
 * instrumentation reads perf_hooks), and the hook intercepted every module load — ~0.6 s of each start-up.
 *
 * Worker threads inherit `--import`, so this file also runs inside pino's transport workers; it does nothing there (one SDK
 * per process, and a worker must not open a second metrics server).
 */
import { isMainThread } from 'node:worker_threads';
import { hostPort } from '../src/listen-address.js';
import { telemetryOptionsFromEnv } from './options.js';

const options = telemetryOptionsFromEnv(process.env);

/**
 * Stops the process as src/main.ts does for its own settings: one line, exit code 1, no stack trace. Here rather than
 * there because this file runs first, and a node without the /metrics its scrape config names must not start at all.
 */
function refuseToStart(line: string): never {
  process.stderr.write(`beacon: ${line}\n`);
  process.exit(1);
}

// Checked even with the SDK disabled: an invalid setting is refused whether or not it is used, as src/config.ts does. The
// app's own settings are read too (only on this path), so one start names every invalid variable, not just these.
if (isMainThread && options.errors.length > 0) {
  const { configProblems } = await import('../src/config.js');
  const problems = [...options.errors, ...configProblems(process.env)];
  refuseToStart(`invalid configuration: ${problems.join('; ')}`);
}

if (isMainThread && !options.disabled) {
  // Loaded only when enabled: with OTEL_SDK_DISABLED=true not one SDK module is read.
  const { createTelemetrySdk, detectTelemetryResource, installDiagnostics } = await import('./sdk.js');
  const { onTelemetryShutdown } = await import('../src/telemetry/lifecycle.js');
  const { registerProcessMetrics } = await import('../src/telemetry/process-metrics.js');

  installDiagnostics(options);
  const { sdk, prometheus, rootSampling, exportedSpans } = createTelemetrySdk(options, await detectTelemetryResource(options));
  let metricsServer: import('node:http').Server | undefined;
  sdk.start();
  if (prometheus !== undefined && options.metrics !== undefined) {
    const { host, port } = options.metrics;
    // A taken port or an address this host does not have: refused as src/main.ts refuses HOST/PORT.
    metricsServer = await (await import('./metrics-server.js')).startMetricsServer(prometheus, options.metrics).catch((err: unknown) => {
      const reason = err instanceof Error ? ((err as NodeJS.ErrnoException).code ?? err.message) : String(err);
      return refuseToStart(`cannot listen on ${hostPort(host, port)} (METRICS_HOST/METRICS_PORT): ${reason}`);
    });
  }
  exportedSpans?.build();
  if (rootSampling !== undefined) (await import('../src/telemetry/root-sampling.js')).sampleRootsBeforeTheSdk(rootSampling);
  registerProcessMetrics();
  const { diag } = await import('@opentelemetry/api');
  onTelemetryShutdown(() => {
    // The port closes first: once the SDK stopped, the exporter answered each scrape 200 with only a comment saying it
    // failed ("MetricReader is shutdown") — an empty scrape, not a target that went away.
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    return sdk.shutdown().catch((err: unknown) => {
      // Typically the last span batch could not be exported; say so, then let lifecycle.ts count the failure.
      diag.error('telemetry shutdown: flushing or stopping an exporter failed', err);
      throw err;
    });
  });
}
