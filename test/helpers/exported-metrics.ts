/**
 * Beacon's metrics (src/telemetry/metrics.ts) on a meter provider of the test's own, exported as otel/sdk.ts exports them
 * (the Prometheus exporter with Beacon's histogram producer), on a loopback `/metrics` a test scrapes as Prometheus would.
 */
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { HistogramProducer } from '../../src/telemetry/histogram-table.js';
import { createMetrics, type GaugeSources, type Metrics } from '../../src/telemetry/metrics.js';
import { parseExposition, type Family } from './exposition.js';
import { freePort } from './free-port.js';

export interface ExportedMetrics {
  metrics: Metrics;
  /** One scrape of the loopback `/metrics`, parsed. */
  scrape(): Promise<Map<string, Family>>;
  close(): Promise<void>;
}

/** Starts the exporter with metrics whose gauges read `sources`. */
export async function exportedMetrics(sources: GaugeSources): Promise<ExportedMetrics> {
  const port = await freePort();
  const histograms = new HistogramProducer();
  const exporter = new PrometheusExporter({
    host: '127.0.0.1',
    port,
    preventServerStart: true,
    withoutScopeInfo: true,
    withoutTargetInfo: true,
    metricProducers: [histograms],
  });
  await exporter.startServer();
  const provider = new MeterProvider({ readers: [exporter] });
  const metrics = createMetrics(sources, { version: '0.0.0', meter: provider.getMeter('beacon'), histograms });
  return {
    metrics,
    scrape: async () => parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()),
    close: () => provider.shutdown(),
  };
}
