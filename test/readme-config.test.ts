/** The README's configuration table and the code name the same variables: none undocumented, none documented but unread. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

test('every variable of the configuration table is read by the code, and every one the code reads is in the table', () => {
  const readme = read('README.md');
  const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Health'));
  const documented = new Set<string>();
  for (const row of table.split('\n').filter((l) => l.startsWith('| `'))) {
    const firstCell = row.split('|')[1] ?? '';
    for (const [, name] of firstCell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) documented.add(name!);
  }
  assert.ok(documented.size > 30, `${documented.size} variables in the table`);

  const config = read('src/config.ts');
  const schema = config.slice(config.indexOf('const envSchema = z.object({'), config.indexOf('\n});', config.indexOf('const envSchema')));
  const readByConfig = [...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]!);
  assert.ok(readByConfig.length > 30);
  for (const name of readByConfig) assert.ok(documented.has(name), `${name} is read by src/config.ts but not in the README`);

  // Read by the OpenTelemetry SDK itself (NodeSDK's sampler configuration), not by Beacon's code.
  const readBySdk = new Set(['OTEL_TRACES_SAMPLER', 'OTEL_TRACES_SAMPLER_ARG']);
  const code = config + read('otel/options.ts');
  for (const name of documented) {
    assert.ok(code.includes(name) || readBySdk.has(name), `${name} is in the README but read nowhere`);
  }
});
