/**
 * prometheus/alerts.yml is the one source of truth for alert rules; this renders it as the Prometheus Operator
 * `PrometheusRule` in deploy/kubernetes/prometheusrule.yaml. `npm run k8s:rules` writes the file; test/stack checks the
 * committed file equals what this renders.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where the rendered PrometheusRule is committed. */
export const PROMETHEUS_RULE_PATH = `${ROOT}deploy/kubernetes/prometheusrule.yaml`;

/** The PrometheusRule YAML text for the rule groups in prometheus/alerts.yml. */
export function renderPrometheusRule(): string {
  const rules: unknown = parse(readFileSync(`${ROOT}prometheus/alerts.yml`, 'utf8'));
  const resource = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'beacon', labels: { 'app.kubernetes.io/name': 'beacon' } },
    spec: rules,
  };
  const header = '# GENERATED from prometheus/alerts.yml by `npm run k8s:rules`; edit that file, not this one.\n';
  return header + stringify(resource, { lineWidth: 0 });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(PROMETHEUS_RULE_PATH, renderPrometheusRule());
  console.log('wrote deploy/kubernetes/prometheusrule.yaml');
}
