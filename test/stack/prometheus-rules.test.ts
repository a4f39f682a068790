/**
 * Prometheus and Alertmanager configuration, checked by their own tools (promtool, amtool), plus the house rules for
 * alerts: each has `for`, a severity, summary, description and a runbook section, and a unit test that fires it and one
 * that keeps it silent.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ROOT, readYaml } from './expressions.js';

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface UnitTests {
  rule_files: string[];
  tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
}

const alerts = (): Rule[] => readYaml<{ groups: Array<{ rules: Rule[] }> }>('prometheus/alerts.yml').groups.flatMap((g) => g.rules);
const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });

test('promtool check config accepts prometheus/prometheus.yml (and the rule file it loads)', () => {
  assert.match(run('promtool', ['check', 'config', 'prometheus/prometheus.yml']), /SUCCESS/);
});

test('promtool check rules accepts prometheus/alerts.yml', () => {
  assert.match(run('promtool', ['check', 'rules', 'prometheus/alerts.yml']), /SUCCESS: \d+ rules found/);
});

test('promtool test rules passes every alert unit test', () => {
  assert.match(run('promtool', ['test', 'rules', 'prometheus/tests/alerts.test.yml']), /SUCCESS/);
});

test('every alert has a unit test where it fires and one where it stays silent', () => {
  const cases = readYaml<UnitTests>('prometheus/tests/alerts.test.yml').tests.flatMap((t) => t.alert_rule_test ?? []);
  for (const rule of alerts()) {
    const mine = cases.filter((c) => c.alertname === rule.alert);
    assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${rule.alert}: no case where it fires`);
    assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${rule.alert}: no case where it stays silent`);
  }
});

test('every alert has for, severity, summary, description and a runbook section that exists', () => {
  const runbook = readFileSync(`${ROOT}docs/runbook.md`, 'utf8');
  const anchors = new Set([...runbook.matchAll(/^## (.+)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));
  const names = alerts().map((r) => r.alert);
  assert.equal(new Set(names).size, names.length, 'alert names are unique');
  for (const rule of alerts()) {
    assert.match(rule.for ?? '', /^\d+[smh]$/, `${rule.alert}: for`);
    assert.ok(['critical', 'warning', 'info'].includes(rule.labels?.severity ?? ''), `${rule.alert}: severity`);
    assert.ok((rule.annotations?.summary ?? '').length > 0, `${rule.alert}: summary`);
    assert.ok((rule.annotations?.description ?? '').length > 0, `${rule.alert}: description`);
    const anchor = rule.annotations?.runbook ?? '';
    assert.equal(anchor, `docs/runbook.md#${rule.alert.toLowerCase()}`, `${rule.alert}: runbook annotation`);
    assert.ok(anchors.has(rule.alert.toLowerCase()), `${rule.alert}: no "## ${rule.alert}" section in docs/runbook.md`);
  }
});

test('the issue’s alert list is covered', () => {
  const names = alerts().map((r) => r.alert);
  for (const required of [
    'BeaconNoConnections',
    'BeaconTooManyConnections',
    'BeaconDown',
    'BeaconConnectionDropRate',
    'BeaconHighErrorRate',
    'BeaconRateLimitsTriggered',
    'BeaconSlowConsumerDisconnects',
    'BeaconBroadcastLatencyHigh',
    'BeaconEventLoopLag',
    'BeaconMemoryHigh',
  ]) {
    assert.ok(names.includes(required), required);
  }
  const down = alerts().find((r) => r.alert === 'BeaconDown');
  assert.match(down?.expr ?? '', /\bup\{[^}]*\} == 0/);
});

test('amtool check-config accepts alertmanager/alertmanager.yml', () => {
  assert.match(run('amtool', ['check-config', 'alertmanager/alertmanager.yml']), /SUCCESS/);
});

test('alertmanager routes group alerts and the Prometheus config points at alertmanager', () => {
  const am = readYaml<{ route: { group_by: string[]; receiver: string }; receivers: Array<{ name: string }> }>('alertmanager/alertmanager.yml');
  assert.ok(am.route.group_by.includes('alertname'));
  assert.ok(am.receivers.some((r) => r.name === am.route.receiver));
  const prom = readYaml<{ alerting: { alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }> } }>('prometheus/prometheus.yml');
  assert.deepEqual(prom.alerting.alertmanagers[0]?.static_configs[0]?.targets, ['alertmanager:9093']);
});
