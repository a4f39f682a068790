/**
 * Overview: is Beacon healthy right now, and if not, which stage is hurting — connections, messages, broadcast, the HTTP
 * API, protection (rate limits, backpressure) or the runtime. Thresholds drawn on a panel mirror prometheus/alerts.yml.
 */
import { RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { beaconDashboard, quantile, rate } from '../base.js';
import { BEACON, NEUTRAL, stat, steps, timeseries } from '../panels.js';


/** Builds the Overview dashboard. */
export function overview(): Dashboard {
  return beaconDashboard('Beacon / Overview', 'beacon-overview', 'Connections, messages, broadcast latency, HTTP API, protection and runtime of every Beacon node.')

    .withRow(new RowBuilder('Now'))
    .withPanel(stat('Open connections', 'short', { expr: `sum(websocket_connections{${BEACON}})`, legend: 'connections' }, steps('green', [20000, 'orange'], [40000, 'red'])))
    .withPanel(stat('Nodes up', 'short', { expr: `sum(up{${BEACON}})`, legend: 'nodes' }, steps('red', [1, 'green'])))
    .withPanel(stat('Publishes', 'ops', { expr: `sum(rate(websocket_events_published_total{${BEACON}}[$__rate_interval]))`, legend: 'publishes/s' }, NEUTRAL()))
    .withPanel(stat('Frames rejected', 'percentunit', { expr: `sum(rate(websocket_message_errors_total{${BEACON}}[$__rate_interval])) / clamp_min(sum(rate(websocket_messages_received_total{${BEACON}}[$__rate_interval])), 1e-9)`, legend: 'error ratio' }, steps('green', [0.01, 'orange'], [0.05, 'red'])))

    .withRow(new RowBuilder('Connections'))
    .withPanel(timeseries('Open connections by node', 'short', [{ expr: `sum by (instance) (websocket_connections{${BEACON}})`, legend: '{{instance}}' }], { thresholds: steps('green', [20000, 'red']), showThresholds: true, min: 0 }))
    .withPanel(timeseries('Connects and rejections', 'cps', [
      { expr: rate('websocket_connections_opened_total', 'app_id'), legend: 'opened {{app_id}}' },
      { expr: rate('websocket_connections_rejected_total', 'reason'), legend: 'rejected {{reason}}' },
      { expr: rate('websocket_http_malformed_requests_total', 'reason'), legend: 'malformed HTTP {{reason}}' },
    ]))
    .withPanel(timeseries('Disconnects by reason', 'cps', [{ expr: rate('websocket_connections_closed_total', 'reason'), legend: '{{reason}}' }], { stacked: true }))
    .withPanel(timeseries('Connection lifetime p50 / p95', 's', [
      { expr: quantile(0.5, 'websocket_connection_duration_seconds', 'reason'), legend: 'p50 {{reason}}' },
      { expr: quantile(0.95, 'websocket_connection_duration_seconds', 'reason'), legend: 'p95 {{reason}}' },
    ]))

    .withRow(new RowBuilder('Messages'))
    .withPanel(timeseries('Messages in by kind', 'ops', [{ expr: rate('websocket_messages_received_total', 'kind'), legend: '{{kind}}' }], { stacked: true }))
    .withPanel(timeseries('Messages out by kind', 'ops', [{ expr: rate('websocket_messages_sent_total', 'kind'), legend: '{{kind}}' }], { stacked: true }))
    .withPanel(timeseries('Bandwidth', 'Bps', [
      { expr: `sum(rate(websocket_received_bytes_total{${BEACON}}[$__rate_interval]))`, legend: 'in' },
      { expr: `sum(rate(websocket_sent_bytes_total{${BEACON}}[$__rate_interval]))`, legend: 'out' },
    ]))
    .withPanel(timeseries('Errors by reason', 'ops', [{ expr: rate('websocket_message_errors_total', 'reason'), legend: '{{reason}}' }], { stacked: true, thresholds: steps('green', [0.1, 'red']) }))

    .withRow(new RowBuilder('Broadcast'))
    .withPanel(timeseries('Broadcast latency p50 / p95 / p99 by recipients', 's', [
      { expr: quantile(0.5, 'websocket_broadcast_duration_seconds', 'recipients'), legend: 'p50 {{recipients}}' },
      { expr: quantile(0.95, 'websocket_broadcast_duration_seconds', 'recipients'), legend: 'p95 {{recipients}}' },
      { expr: quantile(0.99, 'websocket_broadcast_duration_seconds', 'recipients'), legend: 'p99 {{recipients}}' },
    ], { thresholds: steps('green', [0.25, 'red']), showThresholds: true, description: 'Publish accepted until the last frame is written on this node. The line at 250ms is the BeaconBroadcastLatencyHigh alert.' }))
    .withPanel(timeseries('Publishes by source', 'ops', [{ expr: rate('websocket_events_published_total', 'source'), legend: '{{source}}' }], { stacked: true }))

    .withRow(new RowBuilder('HTTP API'))
    .withPanel(timeseries('HTTP API requests by status', 'reqps', [{ expr: rate('http_server_request_duration_seconds_count', 'http_route, http_response_status_code'), legend: '{{http_route}} {{http_response_status_code}}' }], { width: 6 }))
    .withPanel(timeseries('HTTP API latency p95', 's', [{ expr: quantile(0.95, 'http_server_request_duration_seconds', 'http_route'), legend: '{{http_route}}' }], { width: 6, thresholds: steps('green', [0.5, 'red']) }))
    .withPanel(timeseries('HTTP API auth failures', 'reqps', [{ expr: rate('websocket_api_auth_failures_total', 'reason'), legend: '{{reason}}' }], { width: 6 }))
    .withPanel(timeseries('HTTP API refusals by reason', 'reqps', [{ expr: rate('websocket_api_refusals_total', 'reason'), legend: '{{reason}}' }], { width: 6, stacked: true, description: 'API calls refused with the error named by reason (invalid_json, data_too_large, invalid_channel_name, …; shutting_down and engine_unavailable are 503s). Refused signatures, rate limits and unknown paths are counted beside it, not here.' }))

    .withRow(new RowBuilder('Protection'))
    .withPanel(timeseries('Rate limits triggered', 'ops', [{ expr: rate('websocket_rate_limit_triggered_total', 'app_id, scope'), legend: '{{app_id}} {{scope}}' }], { width: 8, thresholds: steps('green', [1, 'red']), showThresholds: true }))
    .withPanel(timeseries('Backpressure', 'ops', [{ expr: rate('websocket_backpressure_events_total', 'action'), legend: '{{action}}' }], { width: 8, thresholds: steps('green', [0.05, 'red']) }))
    .withPanel(timeseries('Send buffers', 'bytes', [{ expr: `sum by (instance) (websocket_send_buffer_bytes{${BEACON}})`, legend: '{{instance}}' }], { width: 8 }))

    .withRow(new RowBuilder('Runtime'))
    .withPanel(timeseries('Event loop delay p99', 's', [{ expr: `max by (instance) (nodejs_eventloop_delay_p99{${BEACON}})`, legend: '{{instance}}' }], { width: 8, thresholds: steps('green', [0.1, 'red']), showThresholds: true }))
    .withPanel(timeseries('Event loop utilisation', 'percentunit', [{ expr: `max by (instance) (nodejs_eventloop_utilization{${BEACON}})`, legend: '{{instance}}' }], { width: 8, thresholds: steps('green', [0.8, 'red']), min: 0 }))
    .withPanel(timeseries('CPU', 'percentunit', [{ expr: `sum by (instance) (rate(process_cpu_seconds_total{${BEACON}}[$__rate_interval]))`, legend: '{{instance}}' }], { width: 8, thresholds: steps('green', [0.8, 'red']), min: 0 }))
    .withPanel(timeseries('Memory', 'bytes', [
      { expr: `sum by (instance) (process_resident_memory_bytes{${BEACON}})`, legend: 'rss {{instance}}' },
      { expr: `sum by (instance) (v8js_memory_heap_used{${BEACON}})`, legend: 'heap used {{instance}}' },
    ], { width: 8, thresholds: steps('green', [1.5 * 1024 ** 3, 'red']), showThresholds: true, min: 0 }))
    .withPanel(timeseries('Open file descriptors', 'short', [
      { expr: `sum by (instance) (process_open_fds{${BEACON}})`, legend: 'fds {{instance}}' },
      { expr: `sum by (instance) (websocket_connections{${BEACON}})`, legend: 'connections {{instance}}' },
    ], { width: 8, description: 'Every connection holds one descriptor: a widening gap between the two lines points at leaked sockets.' }))
    .withPanel(timeseries('GC time', 'percentunit', [{ expr: `sum by (instance) (rate(v8js_gc_duration_sum{${BEACON}}[$__rate_interval]))`, legend: '{{instance}}' }], { width: 8, thresholds: steps('green', [0.1, 'red']) }))

    // Totals since each node started, not rates: a loss is rare, and a counter series that appears with its first loss
    // (the span counter per error_type) has no rate to show for it.
    .withRow(new RowBuilder('Losses'))
    .withPanel(timeseries('Log lines lost', 'short', [
      { expr: `sum by (instance, reason) (loki_lines_dropped_total{${BEACON}})`, legend: 'Loki {{instance}} {{reason}}' },
      { expr: `sum by (instance, reason) (stdout_lines_dropped_total{${BEACON}})`, legend: 'stdout {{instance}} {{reason}}' },
    ], { width: 6, thresholds: steps('green', [1, 'red']), min: 0, description: 'Log lines that never reached Loki (no data without LOKI_URL) or stdout since each node started, by reason. A drop fires BeaconLogLinesDropped or BeaconStdoutLinesDropped.' }))
    .withPanel(timeseries('Spans lost on the way to the trace backend', 'short', [
      { expr: `sum by (instance, error_type) (otel_sdk_processor_span_processed_total{${BEACON}, error_type!=""})`, legend: '{{instance}} {{error_type}}' },
    ], { width: 6, thresholds: steps('green', [1, 'red']), min: 0, description: 'Sampled spans lost since each node started: queue_full (the export queue was full) or the error an export failed with. No data: none lost. A loss fires BeaconSpansDropped.' }))
    .withPanel(timeseries('Span queue fill', 'percentunit', [
      { expr: `max by (instance) (otel_sdk_processor_span_queue_size{${BEACON}} / otel_sdk_processor_span_queue_capacity{${BEACON}})`, legend: '{{instance}}' },
    ], { width: 6, thresholds: steps('green', [0.8, 'orange'], [1, 'red']), min: 0, description: 'Spans waiting for export as a share of OTEL_BSP_MAX_QUEUE_SIZE; at 100 % new spans are dropped.' }))
    .withPanel(timeseries('Publishes the cluster engine dropped', 'short', [
      { expr: `sum by (instance, reason) (websocket_adapter_dropped_total{${BEACON}})`, legend: '{{instance}} {{reason}}' },
    ], { width: 6, thresholds: steps('green', [1, 'red']), min: 0, description: 'Publishes that never reached the other nodes since each node started: down (Redis unreachable) or error. A drop fires BeaconPublishesDropped.' }))

    .withRow(new RowBuilder('Scrape health'))
    .withPanel(timeseries('Targets up', 'short', [{ expr: 'sum by (job) (up)', legend: '{{job}}' }], { width: 12, thresholds: steps('red', [1, 'green']), min: 0 }))
    .withPanel(timeseries('Scrape duration', 's', [{ expr: 'max by (job) (scrape_duration_seconds)', legend: '{{job}}' }], { width: 12, thresholds: steps('green', [5, 'red']) }))
    .build();
}
