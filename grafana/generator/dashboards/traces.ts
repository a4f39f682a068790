/**
 * Traces: TraceQL searches for the publishes and deliveries worth a look, and the span metrics Tempo's metrics-generator
 * remote-writes to Prometheus (rate, errors and latency per span name, with exemplars that open the trace).
 */
import { DashboardBuilder, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as NodeGraphPanel } from '@grafana/grafana-foundation-sdk/nodegraph';
import { DataqueryBuilder as TempoQuery } from '@grafana/grafana-foundation-sdk/tempo';
import { TEMPO } from '../datasources.js';
import { steps, timeseries, traceSearch } from '../panels.js';
import { beaconLinks } from '../variables.js';

const SPANS = 'service="beacon"';

/** Builds the Traces dashboard. */
export function traces(): Dashboard {
  return new DashboardBuilder('Beacon / Traces')
    .uid('beacon-traces')
    .description('Slow publishes and deliveries, failed spans, span metrics and the service graph from Tempo.')
    .tags(['beacon'])
    .refresh('1m')
    .time({ from: 'now-1h', to: 'now' })
    .timezone('browser')
    .readonly()
    .links(beaconLinks())

    .withRow(new RowBuilder('Search'))
    .withPanel(
      traceSearch('Slow publishes (> 50ms)', '{ resource.service.name = "beacon" && name =~ "publish.*" && duration > 50ms }', {
        width: 12,
        description: 'Accepted events whose publish span took more than 50ms, from the HTTP API or a client event.',
      }),
    )
    .withPanel(
      traceSearch('Slow deliveries (> 50ms)', '{ resource.service.name = "beacon" && name =~ "deliver.*" && duration > 50ms }', {
        width: 12,
        description: 'Fan-outs on one node that took more than 50ms; pusher.recipients tells how wide they were.',
      }),
    )
    .withPanel(
      traceSearch('Failed spans', '{ resource.service.name = "beacon" && status = error }', {
        width: 12,
        description: 'Spans that ended with an error status: rejected publishes, failed webhooks, adapter errors.',
      }),
    )
    .withPanel(
      traceSearch('Wide publishes (> 100 recipients)', '{ resource.service.name = "beacon" && span.pusher.recipients > 100 }', {
        width: 12,
        description: 'Deliveries that fanned out to more than 100 connections on one node.',
      }),
    )

    .withRow(new RowBuilder('Span metrics'))
    .withPanel(timeseries('Span rate by name', 'ops', [{ expr: `sum by (span_name) (rate(traces_spanmetrics_calls_total{${SPANS}}[$__rate_interval]))`, legend: '{{span_name}}' }], { width: 8 }))
    .withPanel(timeseries('Span error ratio by name', 'percentunit', [{
      expr: `sum by (span_name) (rate(traces_spanmetrics_calls_total{${SPANS}, status_code="STATUS_CODE_ERROR"}[$__rate_interval])) / sum by (span_name) (rate(traces_spanmetrics_calls_total{${SPANS}}[$__rate_interval]))`,
      legend: '{{span_name}}',
    }], { width: 8, thresholds: steps('green', [0.01, 'orange'], [0.05, 'red']), min: 0 }))
    .withPanel(timeseries('Span latency p95 by name', 's', [{ expr: `histogram_quantile(0.95, sum by (le, span_name) (rate(traces_spanmetrics_latency_bucket{${SPANS}}[$__rate_interval])))`, legend: '{{span_name}}' }], {
      width: 8,
      thresholds: steps('green', [0.25, 'red']),
      description: 'Exemplars on this panel open the trace behind a point.',
    }))

    .withRow(new RowBuilder('Service graph'))
    .withPanel(
      new NodeGraphPanel()
        .title('Service graph')
        .datasource(TEMPO)
        .span(24)
        .height(10)
        .withTarget(new TempoQuery().datasource(TEMPO).refId('A').queryType('serviceMap')),
    )
    .build();
}
