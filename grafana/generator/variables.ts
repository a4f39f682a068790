/** Dashboard variables and links shared by the generated dashboards. */
import {
  DashboardLinkBuilder,
  DashboardLinkType,
  QueryVariableBuilder,
  VariableRefresh,
  VariableSort,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { PROMETHEUS } from './datasources.js';

/** Every Beacon node, multi-select with All: panels aggregate with `sum by` over the chosen nodes. */
export function instanceVariable(): QueryVariableBuilder {
  return new QueryVariableBuilder('instance')
    .label('Node')
    .datasource(PROMETHEUS)
    .query('label_values(up{job="beacon"}, instance)')
    .definition('label_values(up{job="beacon"}, instance)')
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*')
    .current({ text: 'All', value: '$__all' });
}

/** Links every Beacon dashboard to the others (they share the `beacon` tag), keeping time range and variables. */
export function beaconLinks(): DashboardLinkBuilder[] {
  return [
    new DashboardLinkBuilder('Beacon')
      .type(DashboardLinkType.Dashboards)
      .tags(['beacon'])
      .asDropdown(true)
      .keepTime(true)
      .includeVars(true)
      .targetBlank(false)
      .icon('external link')
      .tooltip('')
      .url(''),
  ];
}
