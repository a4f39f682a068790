/** Reading the captured JSON log lines of a test server. */
import type { TestServer } from './server.js';
import { until } from './wait.js';

/** Log lines whose fields equal every field of `match`. */
export function logLines(server: TestServer, match: Record<string, unknown>): Record<string, unknown>[] {
  return server.logs.filter((line) => Object.entries(match).every(([k, v]) => line[k] === v));
}

/**
 * Waits for the log line matching `match` and asserts it was written exactly once; returns it.
 * Rejections are logged synchronously with the rejection itself, so once one is there a duplicate would be too.
 */
export async function loggedOnce(server: TestServer, match: Record<string, unknown>): Promise<Record<string, unknown>> {
  const what = `log line ${JSON.stringify(match)}`;
  await until(() => logLines(server, match).length > 0, what);
  const lines = logLines(server, match);
  if (lines.length !== 1) throw new Error(`${what} written ${lines.length} times:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
  return lines[0] as Record<string, unknown>;
}
