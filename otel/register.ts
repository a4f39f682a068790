/**
 * The OpenTelemetry bootstrap, loaded before the app:
 *   node --import ./dist/otel/register.js dist/src/main.js           (production, `npm start`)
 *   node --import tsx --import ./otel/register.ts src/main.ts         (development and tests)
 *
 * Order matters: the import-in-the-middle loader hook must be registered, and the instrumentations must have told it which
 * modules to wrap, before the app's first `import`; this module's top-level `await` holds the app back until then.
 *
 * Worker threads inherit `--import`, so this file also runs inside pino's transport workers; it does nothing there (one SDK
 * per process, and a worker must not open a second metrics server).
 */
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import { telemetryOptionsFromEnv } from './options.js';

const options = telemetryOptionsFromEnv(process.env);

if (isMainThread && !options.disabled) {
  const { createAddHookMessageChannel } = await import('import-in-the-middle');
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);

  // Loaded only when enabled: with OTEL_SDK_DISABLED=true not one SDK module is read.
  const { createTelemetrySdk, detectTelemetryResource, installDiagnostics } = await import('./sdk.js');
  const { onTelemetryShutdown } = await import('../src/telemetry/lifecycle.js');
  const { registerProcessMetrics } = await import('../src/telemetry/process-metrics.js');

  installDiagnostics(options);
  const { sdk } = createTelemetrySdk(options, await detectTelemetryResource(options));
  sdk.start();
  registerProcessMetrics();
  const { diag } = await import('@opentelemetry/api');
  onTelemetryShutdown(() =>
    sdk.shutdown().catch((err: unknown) => {
      // Typically the last span batch could not be exported; say so, then let lifecycle.ts count the failure.
      diag.error('telemetry shutdown: flushing or stopping an exporter failed', err);
      throw err;
    }),
  );

  await waitForAllMessagesAcknowledged();
}
