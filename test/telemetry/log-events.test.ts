/**
 * The log-event catalog is one list: docs/telemetry.md's table of log events and `LOG_EVENTS` (the `LogEvent` type) name
 * the same events, and no line in src/ is written around it (every one goes through `logEvent` or an intent method on it).
 * Nor does fastify write one outside it: every line of a server started, used and stopped names a catalog event.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LOG_EVENTS } from '../../src/telemetry/log-events.js';
import { RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The event names of the table under "## Logs" (a row may name two: `subscribed` / `unsubscribed`). */
async function documentedEvents(): Promise<string[]> {
  const doc = await readFile(join(ROOT, 'docs/telemetry.md'), 'utf8');
  const section = doc.slice(doc.indexOf('\n## Logs\n'));
  const rows = section.slice(0, section.indexOf('\n### ')).split('\n').filter((l) => l.startsWith('| `'));
  return rows.flatMap((row) => [...row.split('|')[1]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!));
}

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((e) => e.endsWith('.ts')).map((e) => join(dir, e));
}

test('docs/telemetry.md lists exactly the events of the LogEvent type, each once', async () => {
  const documented = await documentedEvents();
  assert.ok(documented.length > 20, `the log table was found (${documented.length} events)`);
  assert.equal(new Set(documented).size, documented.length, 'no event documented twice');
  assert.deepEqual([...documented].sort(), [...LOG_EVENTS].sort());
});

test('no line in src/ is written straight to pino: every one goes through logEvent and its catalog type', async () => {
  const direct = /\b(?:logger|log)\s*\.\s*(?:trace|debug|info|warn|error|fatal)\s*\(/;
  const offenders: string[] = [];
  for (const file of await sourceFiles(join(ROOT, 'src'))) {
    if (file.endsWith(join('telemetry', 'log-events.ts'))) continue;
    const lines = (await readFile(file, 'utf8')).split('\n');
    lines.forEach((line, i) => {
      if (direct.test(line)) offenders.push(`${file.slice(ROOT.length)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(offenders, []);
});

test('every line a server writes, fastify\'s own included, names a catalog event (no "Server listening at …")', async () => {
  // fastify wrote one bare `Server listening at http://…` line per address on listen, without `event`.
  const server = await startServer();
  try {
    const { client } = await RawClient.established(server.port);
    client.send({ event: 'pusher:subscribe', data: { channel: 'news' } });
    await client.next('pusher_internal:subscription_succeeded');
    const answer = await fetch(`http://127.0.0.1:${server.port}/no/such/route`);
    assert.equal(answer.status, 404);
    client.ws.close();
    await client.waitClosed();
  } finally {
    await server.close();
  }
  const catalog = new Set<unknown>(LOG_EVENTS);
  assert.ok(server.logs.some((l) => l.event === 'connection_closed'), 'the lines were captured');
  const outside = server.logs.filter((l) => !catalog.has(l.event));
  assert.deepEqual(outside, [], 'lines without a catalog event');
});
