/**
 * Every LogQL and TraceQL expression (dashboards and correlations) parses with Grafana's own lezer grammars — the ones its
 * query editors use — and names only what Beacon emits: Loki stream labels service_name/env/node_id/level, JSON fields of the log
 * catalog (docs/telemetry.md), and span attributes declared in src/telemetry/tracing.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parser as logql } from '@grafana/lezer-logql';
import { parser as traceql } from '@grafana/lezer-traceql';
import { Attr } from '../../src/telemetry/tracing.js';
import { startServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { ROOT, expressions, interpolate } from './expressions.js';

type Tree = ReturnType<typeof logql.parse>;
type SyntaxNode = Tree['topNode'];

/** Loki stream labels Beacon's Loki transport pushes with. */
const STREAM_LABELS = new Set(['service_name', 'env', 'node_id', 'level']);
/**
 * JSON fields of Beacon's log lines, as it actually writes them: captured from a real server under a small workload that
 * produces the lines the dashboards read (connections opened and closed, subscriptions, API requests, rejections).
 * `trace_id` and `span_id` appear only inside sampled spans, which this in-process server has none of; that they are on
 * those lines is proven by test/telemetry/trace-publish.test.ts.
 */
async function capturedLogFields(): Promise<Set<string>> {
  const server = await startServer();
  try {
    const client = server.client();
    const channel = client.subscribe('orders');
    await new Promise<void>((resolve) => channel.bind('pusher:subscription_succeeded', () => resolve()));
    await server.sdk().trigger('orders', 'created', { id: 1 });
    await server.sdk({ secret: 'wrong' }).trigger('orders', 'created', {}).catch(() => undefined);
    client.disconnect();
    await until(() => server.logs.some((l) => l.event === 'connection_closed'), 'connection_closed line');
  } finally {
    await server.close();
  }
  const fields = new Set<string>([...STREAM_LABELS, 'trace_id', 'span_id']);
  for (const line of server.logs) for (const key of Object.keys(line)) fields.add(key);
  for (const event of ['connection_opened', 'connection_closed', 'subscribed', 'api_request', 'auth_failed']) {
    assert.ok(server.logs.some((l) => l.event === event), `the workload wrote a ${event} line`);
  }
  return fields;
}
/** TraceQL intrinsics used on Beacon spans. */
const INTRINSICS = new Set(['name', 'duration', 'status', 'kind']);

/** Span attributes Beacon sets: the values of the `Attr` table in src/telemetry/tracing.ts, plus the resource's service.name. */
function spanAttributes(): Set<string> {
  // The table itself, not its source text: its values are semantic-convention constants (telemetry/semconv.ts).
  const names: string[] = Object.values(Attr);
  assert.ok(names.length > 5, 'Attr table of src/telemetry/tracing.ts');
  return new Set([...names, 'service.name']);
}

function errors(tree: Tree, text: string): string[] {
  const out: string[] = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) out.push(`syntax error at ${node.from}: …${text.slice(Math.max(0, node.from - 15), node.to + 15)}…`);
    },
  });
  return out;
}

function nodesNamed(tree: Tree, name: string): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  tree.iterate({ enter: (n) => void (n.name === name && out.push(n.node)) });
  return out;
}

test('every LogQL expression parses and uses only Beacon stream labels and log fields', async () => {
  const LOG_FIELDS = await capturedLogFields();
  const all = expressions('logql');
  assert.ok(all.length >= 7, `${all.length} LogQL expressions`);
  for (const e of all) {
    const text = interpolate(e.expr);
    const tree = logql.parse(text);
    assert.deepEqual(errors(tree, text), [], `${e.where}: ${text}`);
    for (const selector of nodesNamed(tree, 'Selector')) {
      for (const id of selector.getChildren('Matchers').flatMap((m) => nodesNamedIn(m, 'Identifier'))) {
        const label = text.slice(id.from, id.to);
        assert.ok(STREAM_LABELS.has(label), `${e.where}: stream selector label "${label}" is not a Loki stream label`);
      }
    }
    for (const filter of nodesNamed(tree, 'LabelFilter')) {
      for (const id of nodesNamedIn(filter, 'Identifier')) {
        const field = text.slice(id.from, id.to);
        assert.ok(LOG_FIELDS.has(field), `${e.where}: field "${field}" is not in Beacon's log lines`);
      }
    }
    for (const grouping of nodesNamed(tree, 'Grouping')) {
      for (const id of nodesNamedIn(grouping, 'Identifier')) {
        assert.ok(LOG_FIELDS.has(text.slice(id.from, id.to)), `${e.where}: grouping by "${text.slice(id.from, id.to)}"`);
      }
    }
    for (const [, field] of text.matchAll(/\{\{\s*\.(\w+)\s*\}\}/g)) {
      assert.ok(LOG_FIELDS.has(field!), `${e.where}: line_format field "${field}"`);
    }
    assert.match(text, /^(\w+ by \(\w+\) \(\w+\()?\{service_name="beacon"/, `${e.where}: selects Beacon's streams`);
  }
});

function nodesNamedIn(node: SyntaxNode, name: string): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  const cursor = node.cursor();
  const end = node.to;
  do {
    if (cursor.from >= end && cursor.node !== node) break;
    if (cursor.name === name) out.push(cursor.node);
  } while (cursor.next() && cursor.from < end);
  return out;
}

test('every TraceQL expression parses and uses only attributes Beacon sets on its spans', () => {
  const attributes = spanAttributes();
  const all = expressions('traceql');
  assert.ok(all.length >= 4, `${all.length} TraceQL expressions`);
  for (const e of all) {
    const text = interpolate(e.expr);
    const tree = traceql.parse(text);
    assert.deepEqual(errors(tree, text), [], `${e.where}: ${text}`);
    const fields = nodesNamed(tree, 'AttributeField');
    const intrinsics = nodesNamed(tree, 'IntrinsicField');
    assert.ok(fields.length + intrinsics.length > 0, `${e.where}: no field`);
    for (const f of fields) {
      const name = text.slice(f.from, f.to).replace(/^(resource|span)?\./, '');
      assert.ok(attributes.has(name), `${e.where}: attribute "${name}" is not set by Beacon`);
    }
    for (const f of intrinsics) {
      const name = text.slice(f.from, f.to);
      assert.ok(INTRINSICS.has(name), `${e.where}: intrinsic "${name}"`);
    }
    for (const [, span] of text.matchAll(/name =~ "(\w+)\.\*"/g)) {
      assert.ok(['publish', 'deliver', 'process', 'connect'].includes(span!), `${e.where}: span name ${span}`);
    }
  }
});

test('a broken query is caught (the checks are not vacuous)', () => {
  assert.notDeepEqual(errors(logql.parse('{service_name="beacon"} | json | ='), 'x'), []);
  assert.notDeepEqual(errors(traceql.parse('{ span.x = }'), 'x'), []);
});
