/**
 * Every query expression the stack ships, gathered from where Grafana and Prometheus will read them: the generated
 * dashboards (grafana/dashboards/*.json), the alert rules (prometheus/alerts.yml) and the data source correlations
 * (grafana/provisioning/datasources/datasources.yml). Shared by the stack tests that parse and execute them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** The repository root, with a trailing slash. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type Language = 'promql' | 'logql' | 'traceql';

/** One expression and where it lives, for failure messages. */
export interface Expression {
  language: Language;
  /** e.g. `beacon-overview.json › Open connections` or `alerts.yml › BeaconDown`. */
  where: string;
  /** The dashboard file for dashboard panels. */
  dashboard?: string;
  /** The panel title for dashboard panels. */
  panel?: string;
  expr: string;
}

interface Target {
  expr?: string;
  query?: string;
  queryType?: string;
  datasource?: { uid?: string };
}
interface Panel {
  title?: string;
  type?: string;
  datasource?: { uid?: string };
  targets?: Target[];
  panels?: Panel[];
}

/** Parses one YAML file of the repository. */
export function readYaml<T>(path: string): T {
  return parse(readFileSync(ROOT + path, 'utf8')) as T;
}

/** The committed dashboards: file name → parsed JSON. */
export function dashboards(): Map<string, { uid: string; title: string; panels: Panel[]; templating?: { list: Array<{ name: string }> } }> {
  const dir = `${ROOT}grafana/dashboards/`;
  const out = new Map();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    out.set(file, JSON.parse(readFileSync(dir + file, 'utf8')));
  }
  return out;
}

function* allPanels(panels: Panel[]): Generator<Panel> {
  for (const p of panels) {
    yield p;
    if (p.panels) yield* allPanels(p.panels);
  }
}

/** Every expression of every dashboard panel, by the language of its data source. */
export function dashboardExpressions(): Expression[] {
  const out: Expression[] = [];
  for (const [file, dashboard] of dashboards()) {
    for (const panel of allPanels(dashboard.panels)) {
      for (const target of panel.targets ?? []) {
        const uid = target.datasource?.uid ?? panel.datasource?.uid;
        const where = `${file} › ${panel.title ?? '(untitled)'}`;
        const base = { where, dashboard: file, panel: panel.title ?? '' };
        if (uid === 'prometheus' && target.expr) out.push({ language: 'promql', ...base, expr: target.expr });
        if (uid === 'loki' && target.expr) out.push({ language: 'logql', ...base, expr: target.expr });
        if (uid === 'tempo' && target.queryType === 'traceql' && target.query) {
          out.push({ language: 'traceql', ...base, expr: target.query });
        }
      }
    }
  }
  return out;
}

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string }> }>;
}

/** Every alert and recording rule expression of prometheus/alerts.yml. */
export function alertExpressions(): Expression[] {
  const rules = readYaml<RuleFile>('prometheus/alerts.yml');
  return rules.groups.flatMap((g) =>
    g.rules.map((r) => ({ language: 'promql' as const, where: `alerts.yml › ${r.alert ?? r.record}`, expr: r.expr })),
  );
}

interface DatasourceFile {
  datasources: Array<{ uid: string; jsonData?: Record<string, unknown> }>;
}

/** The queries of the provisioned correlations (Tempo → Loki logs, Tempo → Prometheus metrics). */
export function correlationExpressions(): Expression[] {
  const file = readYaml<DatasourceFile>('grafana/provisioning/datasources/datasources.yml');
  const tempo = file.datasources.find((d) => d.uid === 'tempo')?.jsonData ?? {};
  const logs = tempo.tracesToLogsV2 as { query?: string } | undefined;
  const metrics = tempo.tracesToMetrics as { queries?: Array<{ name: string; query: string }> } | undefined;
  const out: Expression[] = [];
  // Provisioning files escape a literal `$` as `$$`; Grafana reads them unescaped.
  if (logs?.query) out.push({ language: 'logql', where: 'datasources.yml › tracesToLogsV2', expr: logs.query.replaceAll('$$', '$') });
  for (const q of metrics?.queries ?? []) {
    out.push({ language: 'promql', where: `datasources.yml › tracesToMetrics › ${q.name}`, expr: q.query.replaceAll('$$', '$') });
  }
  return out;
}

/** Everything, of one language. */
export function expressions(language: Language): Expression[] {
  return [...dashboardExpressions(), ...alertExpressions(), ...correlationExpressions()].filter((e) => e.language === language);
}

/**
 * Replaces Grafana's template variables with concrete values so the expression can be parsed or run as Grafana would send it.
 * `rateInterval` stands in for `$__rate_interval` (Grafana derives it from the scrape interval).
 */
export function interpolate(expr: string, rateInterval = '1m'): string {
  return expr
    .replaceAll('$__rate_interval', rateInterval)
    .replaceAll('$__auto', rateInterval)
    .replaceAll('$__interval', rateInterval)
    .replaceAll('$__tags', 'service="beacon"')
    .replace(/\$\{__span\.tags\["[^"]+"\]\}/g, 'sess-1')
    .replace(/\$\{__trace\.traceId\}/g, '0123456789abcdef0123456789abcdef')
    .replaceAll('$instance', '.*')
    .replaceAll('$session_id', 'sess-1');
}
