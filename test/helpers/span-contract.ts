/**
 * The span table of docs/telemetry.md, read as tests compare exported spans with it: each row's attribute keys, the
 * backquoted dotted names of its attributes cell (`messaging.system=pusher` gives `messaging.system`).
 */
import { readFile } from 'node:fs/promises';

export interface DocumentedSpan {
  /** The row's first cell, as written (e.g. "`deliver <channel_type>`"). */
  row: string;
  keys: Set<string>;
}

/** Every row of the table, in its order. */
export async function documentedSpanAttributes(): Promise<DocumentedSpan[]> {
  const doc = await readFile(new URL('../../docs/telemetry.md', import.meta.url), 'utf8');
  const table = doc.slice(doc.indexOf('| span | kind | parent | attributes |'));
  const rows = table.split('\n').slice(2);
  const out: DocumentedSpan[] = [];
  for (const line of rows) {
    if (!line.startsWith('|')) break;
    const cells = line.split(' | ');
    const keys = [...cells[cells.length - 1]!.matchAll(/`([a-z_]+(?:\.[a-z_]+)+)(?:=[^`]*)?`/g)].map((m) => m[1]!);
    out.push({ row: cells[0]!.slice(2), keys: new Set(keys) });
  }
  return out;
}
