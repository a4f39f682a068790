/**
 * The README's configuration table and the configuration schema (src/config.ts `CONFIG_VARIABLES`) name the same variables
 * with the same defaults: none undocumented, none documented but unread, no default in the table the code does not apply.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CONFIG_VARIABLES } from '../src/config.js';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

/** The table's rows: the variables of the first cell and the backquoted defaults of the second, in order. */
function readmeRows(): { names: string[]; defaults: string[]; row: string }[] {
  const readme = read('README.md');
  const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Health'));
  return table
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((row) => {
      const [, names = '', defaults = ''] = row.split('|');
      return {
        row,
        names: [...names.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!),
        defaults: [...defaults.matchAll(/`([^`]+)`/g)].map((m) => m[1]!),
      };
    });
}

test('every variable of the configuration table is read by the code, and every one the code reads is in the table', () => {
  const documented = new Set(readmeRows().flatMap((r) => r.names));
  assert.ok(documented.size > 30, `${documented.size} variables in the table`);

  const readByConfig = CONFIG_VARIABLES.map((v) => v.name);
  assert.ok(readByConfig.length > 30);
  for (const name of readByConfig) assert.ok(documented.has(name), `${name} is read by src/config.ts but not in the README`);

  // Read by the OpenTelemetry bootstrap (otel/options.ts, loaded before the app; otel/diagnostics.ts, the SDK's own
  // diagnostics), by src/telemetry/tracing.ts (OTEL_PROPAGATORS, also NodeSDK's) or by the SDK itself (NodeSDK's sampler).
  const readBySdk = new Set(['OTEL_TRACES_SAMPLER', 'OTEL_TRACES_SAMPLER_ARG']);
  const bootstrap = ['otel/options.ts', 'otel/diagnostics.ts', 'src/telemetry/tracing.ts'].map(read).join('\n');
  for (const name of documented) {
    assert.ok(
      readByConfig.includes(name) || bootstrap.includes(name) || readBySdk.has(name),
      `${name} is in the README but read nowhere`,
    );
  }
});

test("the table's default of every variable is the schema's default (— where it has none)", () => {
  const defaults = new Map(CONFIG_VARIABLES.map((v) => [v.name, v.default]));
  let checked = 0;
  for (const { names, defaults: shown, row } of readmeRows()) {
    const ours = names.filter((n) => defaults.has(n));
    if (ours.length === 0) continue; // the OpenTelemetry bootstrap's variables
    assert.equal(ours.length, names.length, `a row mixes schema and bootstrap variables: ${row}`);
    if (shown.length === 0) {
      for (const name of names) assert.equal(defaults.get(name), undefined, `${name} has a default the README does not show`);
    } else {
      assert.equal(shown.length, names.length, `one default per variable: ${row}`);
      names.forEach((name, i) => assert.equal(shown[i], defaults.get(name), `${name}: README default vs src/config.ts`));
    }
    checked += names.length;
  }
  assert.equal(checked, CONFIG_VARIABLES.length);
});
