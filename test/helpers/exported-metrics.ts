/**
 * Beacon's metrics (src/telemetry/metrics.ts) on a meter provider of the test's own, exported as otel/sdk.ts exports them
 * (the Prometheus exporter with Beacon's metric tables as its producer, the provider with Beacon's views), on a loopback
 * `/metrics` a test scrapes as Prometheus would.
 */
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { MetricTables } from '../../src/telemetry/histogram-table.js';
import { BEACON_METER, createMetrics, METRIC_VIEWS, type GaugeSources, type Metrics } from '../../src/telemetry/metrics.js';
import { parseExposition, type Family } from './exposition.js';
import { freePort } from './free-port.js';

export interface ExportedMetrics {
  metrics: Metrics;
  /** One scrape of the loopback `/metrics`, parsed. */
  scrape(): Promise<Map<string, Family>>;
  close(): Promise<void>;
}

/** Gauge sources with nothing in them, for tests of counters and histograms only (spread over others when some matter). */
export const NO_GAUGES: GaugeSources = {
  connectionsByApp: () => [],
  channelStats: () => [],
  presenceMembersByApp: () => [],
  sendBufferBytes: () => 0,
  adapterStatus: () => ({ adapter: 'local', up: true, pending: 0, congested: false }),
};

/** Starts the exporter with metrics whose gauges read `sources` (none by default), for the configured `appIds` (none). */
export async function exportedMetrics(
  sources: GaugeSources = NO_GAUGES,
  appIds: readonly string[] = [],
  disabledAppIds: readonly string[] = [],
): Promise<ExportedMetrics> {
  const port = await freePort();
  const tables = new MetricTables();
  const exporter = new PrometheusExporter({
    host: '127.0.0.1',
    port,
    preventServerStart: true,
    withoutScopeInfo: true,
    withoutTargetInfo: true,
    metricProducers: [tables],
  });
  await exporter.startServer();
  const provider = new MeterProvider({ readers: [exporter], views: METRIC_VIEWS });
  const metrics = createMetrics(sources, { version: '0.0.0', meter: provider.getMeter(BEACON_METER), tables, appIds, disabledAppIds });
  return {
    metrics,
    scrape: async () => parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()),
    close: () => provider.shutdown(),
  };
}
