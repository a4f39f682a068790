import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';

test('defaults: port 6001, one app, activity timeout 120, client events off', () => {
  const c = loadConfig({});
  assert.equal(c.port, 6001);
  assert.equal(c.activityTimeoutSeconds, 120);
  assert.equal(c.maxPayloadBytes, 100_000);
  assert.equal(c.apps.length, 1);
  assert.deepEqual(
    { id: c.apps[0]?.id, key: c.apps[0]?.key, clientEvents: c.apps[0]?.enableClientEvents, rate: c.apps[0]?.clientEventsPerSecond },
    { id: 'app-id', key: 'app-key', clientEvents: false, rate: 10 },
  );
});

test('an invalid value names its variable', () => {
  assert.throws(() => loadConfig({ PORT: 'eighty' }), (e: unknown) => e instanceof ConfigError && /PORT/.test(e.message));
  assert.throws(() => loadConfig({ APP_ENABLE_CLIENT_EVENTS: 'maybe' }), /APP_ENABLE_CLIENT_EVENTS/);
  assert.throws(() => loadConfig({ ACTIVITY_TIMEOUT: '0' }), /ACTIVITY_TIMEOUT/);
  assert.throws(() => loadConfig({ APP_KEY: 'has space' }), /APP_KEY/);
  assert.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), /LOG_LEVEL/);
});

test('APPS_FILE gives several apps and is validated', () => {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-config-'));
  const file = join(dir, 'apps.json');
  writeFileSync(
    file,
    JSON.stringify({
      apps: [
        { id: 'a', key: 'ka', secret: 'sa', enableClientEvents: true },
        { id: 'b', key: 'kb', secret: 'sb', enabled: false, maxConnections: 5 },
      ],
    }),
  );
  const c = loadConfig({ APPS_FILE: file });
  assert.deepEqual(
    c.apps.map((a) => [a.id, a.enabled, a.enableClientEvents, a.maxConnections]),
    [
      ['a', true, true, 0],
      ['b', false, false, 5],
    ],
  );
  writeFileSync(file, JSON.stringify({ apps: [{ id: 'a', key: 'k', secret: 's' }, { id: 'a', key: 'k2', secret: 's' }] }));
  assert.throws(() => loadConfig({ APPS_FILE: file }), /duplicate app id/);
  writeFileSync(file, JSON.stringify({ apps: [{ id: 'a', key: 'k' }] }));
  assert.throws(() => loadConfig({ APPS_FILE: file }), /APPS_FILE.*secret/);
  assert.throws(() => loadConfig({ APPS_FILE: join(dir, 'missing.json') }), /APPS_FILE: cannot read/);
});
