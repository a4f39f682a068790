/**
 * The dashboards: committed JSON equals what the TypeScript generator produces, and every panel follows the house rules
 * (unit and thresholds set, `$__rate_interval` in every range vector, the `instance` variable where nodes aggregate, data
 * sources by the provisioned uids).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DASHBOARDS, render } from '../../grafana/generator/index.js';
import { ROOT, dashboards, expressions, readYaml } from './expressions.js';

const provisionedUids = (): Set<string> =>
  new Set(readYaml<{ datasources: Array<{ uid: string }> }>('grafana/provisioning/datasources/datasources.yml').datasources.map((d) => d.uid));

test('the committed dashboard JSON equals the generated one (run `npm run dashboards` after editing grafana/generator)', () => {
  const committed = [...dashboards().keys()];
  assert.deepEqual(committed, Object.keys(DASHBOARDS).sort());
  for (const [file, build] of Object.entries(DASHBOARDS)) {
    assert.equal(readFileSync(`${ROOT}grafana/dashboards/${file}`, 'utf8'), render(build), file);
  }
});

test('the four dashboards exist with unique uids and the beacon tag', () => {
  const all = [...dashboards().values()];
  assert.deepEqual(all.map((d) => d.uid).sort(), ['beacon-channels', 'beacon-overview', 'beacon-sessions', 'beacon-traces']);
  for (const d of all) assert.ok((d as unknown as { tags: string[] }).tags.includes('beacon'));
});

test('every data source a dashboard references is provisioned with that uid', () => {
  const uids = provisionedUids();
  for (const [file, d] of dashboards()) {
    const refs = [...JSON.stringify(d).matchAll(/"datasource":\{"type":"(\w+)","uid":"([\w-]+)"\}/g)];
    assert.ok(refs.length > 0, file);
    for (const [, type, uid] of refs) assert.ok(uids.has(uid!), `${file}: ${type} uid ${uid}`);
  }
});

test('every metric panel sets a unit and thresholds', () => {
  for (const [file, d] of dashboards()) {
    for (const p of d.panels as Array<Record<string, unknown>>) {
      if (['row', 'logs', 'nodeGraph'].includes(p.type as string)) continue;
      const defaults = (p.fieldConfig as { defaults: { unit?: string; thresholds?: { steps: unknown[] } } }).defaults;
      assert.ok(defaults.unit, `${file} › ${p.title as string}: unit`);
      assert.ok((defaults.thresholds?.steps.length ?? 0) > 0, `${file} › ${p.title as string}: thresholds`);
    }
  }
});

test('dashboard range vectors use $__rate_interval (LogQL: $__auto), never a fixed window', () => {
  for (const e of expressions('promql').filter((x) => x.dashboard !== undefined)) {
    for (const [, window] of e.expr.matchAll(/\[([^\]]+)\]/g)) assert.equal(window, '$__rate_interval', e.where);
  }
  for (const e of expressions('logql').filter((x) => x.dashboard !== undefined)) {
    for (const [, window] of e.expr.matchAll(/\[([^\]]+)\]/g)) assert.equal(window, '$__auto', e.where);
  }
});

test('dashboards over Beacon metrics have an instance variable and filter every Beacon query by it', () => {
  for (const file of ['beacon-overview.json', 'beacon-channels.json']) {
    const d = dashboards().get(file)!;
    assert.ok(d.templating?.list.some((v) => v.name === 'instance'), file);
    for (const e of expressions('promql').filter((x) => x.dashboard === file && /job="beacon"/.test(x.expr))) {
      assert.match(e.expr, /instance=~"\$instance"/, e.where);
    }
  }
  const sessions = dashboards().get('beacon-sessions.json')!;
  assert.ok(sessions.templating?.list.some((v) => v.name === 'session_id'));
});
