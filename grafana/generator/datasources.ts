/**
 * The data source references every generated dashboard uses. The uids are the fixed ones provisioned in
 * grafana/provisioning/datasources/datasources.yml; test/stack checks the two agree.
 */
import type { DataSourceRef } from '@grafana/grafana-foundation-sdk/common';

/** Prometheus: Beacon's metrics and Tempo's span metrics. */
export const PROMETHEUS: DataSourceRef = { type: 'prometheus', uid: 'prometheus' };
/** Loki: Beacon's JSON log lines, stream labels service_name, env, node_id, level. */
export const LOKI: DataSourceRef = { type: 'loki', uid: 'loki' };
/** Tempo: Beacon's traces. */
export const TEMPO: DataSourceRef = { type: 'tempo', uid: 'tempo' };
