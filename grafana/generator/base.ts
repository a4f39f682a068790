/** What every Beacon dashboard shares: the PromQL shapes it repeats and the dashboard frame (tags, time, instance variable). */
import { DashboardBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { BEACON } from './panels.js';
import { beaconLinks, instanceVariable } from './variables.js';

/** Per-second rate of a counter summed by `by`, over Beacon's series (plus `extra` matchers). */
export const rate = (metric: string, by: string, extra = ''): string =>
  `sum by (${by}) (rate(${metric}{${BEACON}${extra}}[$__rate_interval]))`;

/** Quantile `q` of a histogram, summed by `by`. */
export const quantile = (q: number, metric: string, by: string): string =>
  `histogram_quantile(${q}, sum by (le, ${by}) (rate(${metric}_bucket{${BEACON}}[$__rate_interval])))`;

/** A Beacon dashboard with the common frame: tag, 30 s refresh, last hour, read-only, `instance` variable, links. */
export function beaconDashboard(title: string, uid: string, description: string): DashboardBuilder {
  return new DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(['beacon'])
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .timezone('browser')
    .readonly()
    .withVariable(instanceVariable())
    .links(beaconLinks());
}
