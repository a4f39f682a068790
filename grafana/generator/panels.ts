/**
 * Panel building blocks with the house defaults, so each dashboard file reads as a list of questions and queries:
 * every panel gets a unit and thresholds, every PromQL query a refId and legend, every rate `$__rate_interval`.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import {
  ThresholdsConfigBuilder,
  ThresholdsMode,
  type DashboardLinkBuilder,
  type Threshold,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder as LokiQuery } from '@grafana/grafana-foundation-sdk/loki';
import { PanelBuilder as LogsPanel } from '@grafana/grafana-foundation-sdk/logs';
import { DataqueryBuilder as PromQuery } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { DataqueryBuilder as TempoQuery, SearchTableType } from '@grafana/grafana-foundation-sdk/tempo';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import { LOKI, PROMETHEUS, TEMPO } from './datasources.js';

/** The job every Beacon node is scraped under, and the node filter driven by the `instance` variable. */
export const BEACON = 'job="beacon", instance=~"$instance"';

/** One PromQL query of a panel. */
export interface Prom {
  expr: string;
  legend: string;
}

/** Threshold steps: a base colour, then [value, colour] pairs in increasing order. */
export function steps(base: string, ...more: Array<[number, string]>): ThresholdsConfigBuilder {
  const list: Threshold[] = [{ value: null, color: base }, ...more.map(([value, color]) => ({ value, color }))];
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(list);
}

/** Thresholds for a panel with no alerting level: everything green. */
export const NEUTRAL = (): ThresholdsConfigBuilder => steps('green');

function promTargets(queries: Prom[]): PromQuery[] {
  return queries.map((q, i) =>
    new PromQuery()
      .datasource(PROMETHEUS)
      .refId(String.fromCharCode(65 + i))
      .expr(q.expr)
      .legendFormat(q.legend)
      .range(),
  );
}

/** Options of a time series panel beyond its title, unit and queries. */
export interface SeriesOptions {
  thresholds?: ThresholdsConfigBuilder;
  /** Draw the thresholds as dashed lines (panels whose thresholds mirror an alert). */
  showThresholds?: boolean;
  stacked?: boolean;
  width?: number;
  height?: number;
  description?: string;
  min?: number;
}

/** A time series of PromQL queries, legend as a table with last and max values. */
export function timeseries(title: string, unit: string, queries: Prom[], options: SeriesOptions = {}): TimeseriesPanel {
  const panel = new TimeseriesPanel()
    .title(title)
    .datasource(PROMETHEUS)
    .unit(unit)
    .thresholds(options.thresholds ?? NEUTRAL())
    .thresholdsStyle(
      new common.GraphThresholdsStyleConfigBuilder().mode(
        options.showThresholds ? common.GraphThresholdsStyleMode.Dashed : common.GraphThresholdsStyleMode.Off,
      ),
    )
    .legend(
      new common.VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(common.LegendDisplayMode.Table)
        .placement(common.LegendPlacement.Bottom)
        .calcs(['lastNotNull', 'max']),
    )
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending))
    .fillOpacity(options.stacked ? 30 : 10)
    .lineWidth(1)
    .span(options.width ?? 12)
    .height(options.height ?? 8)
    .targets(promTargets(queries));
  if (options.stacked) panel.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal));
  if (options.description !== undefined) panel.description(options.description);
  if (options.min !== undefined) panel.min(options.min);
  return panel;
}

/** A single big number from one PromQL query, coloured by its thresholds. */
export function stat(
  title: string,
  unit: string,
  query: Prom,
  thresholds: ThresholdsConfigBuilder,
  width = 6,
  description?: string,
): StatPanel {
  const panel = new StatPanel();
  if (description !== undefined) panel.description(description);
  return panel
    .title(title)
    .datasource(PROMETHEUS)
    .unit(unit)
    .thresholds(thresholds)
    .colorMode(common.BigValueColorMode.Value)
    .graphMode(common.BigValueGraphMode.Area)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']))
    .span(width)
    .height(4)
    .targets(promTargets([query]));
}

/** A logs panel over one LogQL query, newest first, JSON fields expandable. */
export function logs(title: string, expr: string, options: { width?: number; height?: number; description?: string } = {}): LogsPanel {
  const panel = new LogsPanel()
    .title(title)
    .datasource(LOKI)
    .showTime(true)
    .wrapLogMessage(true)
    .prettifyLogMessage(false)
    .enableLogDetails(true)
    .sortOrder(common.LogsSortOrder.Descending)
    .dedupStrategy(common.LogsDedupStrategy.None)
    .span(options.width ?? 24)
    .height(options.height ?? 10)
    .withTarget(new LokiQuery().datasource(LOKI).refId('A').expr(expr).maxLines(1000));
  if (options.description !== undefined) panel.description(options.description);
  return panel;
}

/** A time series of one LogQL metric query (counts over time from log lines). */
export function logMetric(title: string, unit: string, expr: string, legend: string, width = 12): TimeseriesPanel {
  return new TimeseriesPanel()
    .title(title)
    .datasource(LOKI)
    .unit(unit)
    .thresholds(NEUTRAL())
    .legend(new common.VizLegendOptionsBuilder().showLegend(true).displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom))
    .drawStyle(common.GraphDrawStyle.Bars)
    .fillOpacity(60)
    .stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal))
    .span(width)
    .height(8)
    .withTarget(new LokiQuery().datasource(LOKI).refId('A').expr(expr).legendFormat(legend));
}

/** A table of traces found by one TraceQL query; each row opens the trace. */
export function traceSearch(title: string, traceql: string, options: { width?: number; description?: string; links?: DashboardLinkBuilder[] } = {}): TablePanel {
  const panel = new TablePanel()
    .title(title)
    .datasource(TEMPO)
    .unit('ms')
    .thresholds(steps('green', [100, 'orange'], [250, 'red']))
    .span(options.width ?? 24)
    .height(9)
    .withTarget(
      new TempoQuery()
        .datasource(TEMPO)
        .refId('A')
        .queryType('traceql')
        .query(traceql)
        .limit(50)
        .tableType(SearchTableType.Traces),
    );
  if (options.description !== undefined) panel.description(options.description);
  if (options.links !== undefined) panel.dataLinks(options.links);
  return panel;
}
