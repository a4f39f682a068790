/**
 * The error registry (src/protocol/errors.ts) and docs/errors.md list the same errors, both directions, with the same wire
 * answer and message — as fastify checks its docs against lib/errors.js. Also: names are unique and match their keys, and
 * the close codes keep pusher-js's reconnect classes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Errors, type BeaconError, type ErrorKind } from '../../src/protocol/errors.js';

const DOC = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

/** The doc section each kind is listed under. */
const SECTION: Record<ErrorKind, string> = {
  http: '## HTTP API',
  frame: '## `pusher:error`',
  subscription: '## `pusher:subscription_error`',
  close: '## Close codes',
};

/** One table row of the doc: `| \`NAME\` | cells… |`, with the kind of the section it is in. */
interface DocRow {
  kind: ErrorKind | undefined;
  cells: string[];
}

function docRows(): Map<string, DocRow> {
  const rows = new Map<string, DocRow>();
  let kind: ErrorKind | undefined;
  for (const line of DOC.split('\n')) {
    if (line.startsWith('## ')) {
      kind = (Object.keys(SECTION) as ErrorKind[]).find((k) => line.startsWith(SECTION[k]));
      continue;
    }
    const m = /^\| `([A-Z0-9_]+)` \|(.*)\|$/.exec(line);
    if (m === null) continue;
    assert.ok(!rows.has(m[1] as string), `${m[1]} is listed twice`);
    rows.set(m[1] as string, { kind, cells: (m[2] as string).split(' | ').map((c) => c.trim()) });
  }
  return rows;
}

/** The cells the doc must show for an error, in its section's column order. */
function expectedCells(error: BeaconError): string[] {
  switch (error.kind) {
    case 'http':
      return [String((error as BeaconError<'http'>).status), error.message];
    case 'frame':
      return [String((error as BeaconError<'frame'>).code ?? 'null'), error.message];
    case 'subscription': {
      const e = error as BeaconError<'subscription'>;
      return [String(e.status), `\`${e.type}\``, e.message];
    }
    case 'close':
      return [String((error as BeaconError<'close'>).code), error.message];
  }
}

test('docs/errors.md lists every registry error, with its wire answer and message', () => {
  const rows = docRows();
  const missing: string[] = [];
  for (const error of Object.values(Errors)) {
    const row = rows.get(error.name);
    if (row === undefined) {
      missing.push(error.name);
      continue;
    }
    assert.equal(row.kind, error.kind, `${error.name} is listed under the wrong section`);
    assert.deepEqual(row.cells, expectedCells(error), `${error.name}: the doc's row differs from the registry`);
  }
  assert.deepEqual(missing, [], 'registry errors missing from docs/errors.md');
});

test('docs/errors.md lists nothing that is not in the registry', () => {
  const names = new Set(Object.keys(Errors));
  const extra = [...docRows().keys()].filter((name) => !names.has(name));
  assert.deepEqual(extra, [], 'docs/errors.md lists errors the registry does not have');
});

test('every registry entry is named after its key, once', () => {
  for (const [key, error] of Object.entries(Errors)) assert.equal(error.name, key);
  assert.ok(Object.keys(Errors).length > 50);
});

test('format fills each %s in order; a message without placeholders is sent as written', () => {
  assert.equal(Errors.API_BATCH_TOO_LARGE.format(11, 10), 'Batch of 11 events is over the limit of 10');
  assert.equal(Errors.API_APP_DISABLED.format(), Errors.API_APP_DISABLED.message);
  assert.equal(Errors.FRAME_UNKNOWN_EVENT.format('pusher:nope'), 'Unknown event: pusher:nope');
});

test('close codes: over capacity, slow consumer and connection rate limit are distinct, all in the back-off range', () => {
  const backOff = [Errors.CLOSE_OVER_CAPACITY, Errors.CLOSE_SLOW_CONSUMER, Errors.CLOSE_CONNECTION_RATE_LIMITED];
  assert.deepEqual(
    backOff.map((e) => e.code),
    [4100, 4110, 4111],
  );
  // pusher-js backs off for 4100–4199 (getCloseAction), so all three keep the client's behaviour of the shared 4100.
  for (const e of backOff) assert.ok(e.code >= 4100 && e.code < 4200, e.name);
  assert.ok(Errors.CLOSE_SHUTTING_DOWN.code >= 4200 && Errors.CLOSE_SHUTTING_DOWN.code < 4300);
});
