/**
 * One push of a batch of log lines to Loki's `/loki/api/v1/push` (JSON), and what its outcome means for the lines:
 * shipped, worth retrying (Loki down or overloaded: connection refused, timeout, 5xx, 408, 429), or refused for good (any
 * other 4xx: a malformed or too-old batch, bad credentials — retrying the same bytes cannot succeed).
 * Runs in the Loki worker thread (loki-transport.ts).
 */
import { abortAfter } from '../lifecycle/abort-after.js';

/**
 * The only stream labels Loki ever sees (docs/telemetry.md); session and trace ids stay in the line. `node_id` gives each
 * node streams of its own: every node of a cluster wrote into the same three, sharing Loki's per-stream rate limit
 * (3 MB/s by default: a connect storm's info lines across the cluster got 429s, then spool drops) and interleaving one
 * stream's entries from several clocks (refused out of order by a Loki without unordered writes).
 */
export const LOKI_LABELS = ['service_name', 'env', 'node_id', 'level'] as const;

/** Where and as whom to push. */
export interface LokiTarget {
  url: string;
  serviceName: string;
  env: string;
  nodeId: string;
  username: string | undefined;
  password: string | undefined;
  tenantId: string | undefined;
}

/** What became of one push. */
export type PushOutcome =
  | { result: 'shipped' }
  | { result: 'retry'; status: string }
  | { result: 'rejected'; status: string };

/** One Loki stream of a push body. */
export interface LokiStream {
  stream: Record<(typeof LOKI_LABELS)[number], string>;
  values: Array<[string, string]>;
}

/** Beacon's lines start `{"level":"info","time":"2026-…"` (logger.ts); anything else falls back to `info` and now. */
const HEAD = /^\{"level":"([a-z]+)","time":"([^"]+)"/;

/** Loki wants the timestamp as a string of nanoseconds since the epoch. */
export function nanosecondsOf(isoTime: string | undefined, fallbackMs: number): string {
  const ms = isoTime === undefined ? Number.NaN : Date.parse(isoTime);
  return `${Number.isFinite(ms) ? ms : fallbackMs}000000`;
}

/** Groups lines into one stream per level, each keeping the lines' order, with each line's own timestamp. */
export function pushBody(
  lines: readonly string[],
  labels: { serviceName: string; env: string; nodeId: string },
  nowMs: number,
): { streams: LokiStream[] } {
  const byLevel = new Map<string, LokiStream>();
  for (const line of lines) {
    const head = HEAD.exec(line);
    const level = head?.[1] ?? 'info';
    let stream = byLevel.get(level);
    if (stream === undefined) {
      stream = { stream: { service_name: labels.serviceName, env: labels.env, node_id: labels.nodeId, level }, values: [] };
      byLevel.set(level, stream);
    }
    stream.values.push([nanosecondsOf(head?.[2], nowMs), line]);
  }
  return { streams: [...byLevel.values()] };
}

/** Statuses a later retry can succeed on. */
function retriable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** Builds the static request headers once. */
export function pushHeaders(target: LokiTarget): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (target.tenantId !== undefined) headers['x-scope-orgid'] = target.tenantId;
  if (target.username !== undefined && target.password !== undefined) {
    headers.authorization = `Basic ${Buffer.from(`${target.username}:${target.password}`).toString('base64')}`;
  }
  return headers;
}

/** Pushes `lines` once, bounded by `timeoutMs` and cut short by `abort` (the shutdown deadline); never throws. */
export async function pushLines(
  target: LokiTarget,
  headers: Record<string, string>,
  lines: readonly string[],
  timeoutMs: number,
  abort: AbortSignal,
): Promise<PushOutcome> {
  const body = JSON.stringify(pushBody(lines, target, Date.now()));
  // Bounded and cut short by `abort`; not AbortSignal.any, whose timeout a GC could take away (abort-after.ts).
  const bound = abortAfter(Math.max(1, timeoutMs), abort);
  try {
    const response = await fetch(new URL('loki/api/v1/push', target.url.endsWith('/') ? target.url : `${target.url}/`), {
      method: 'POST',
      headers,
      body,
      signal: bound.signal,
    });
    // The body is not needed, but reading it lets the connection be reused.
    await response.arrayBuffer().catch(() => undefined);
    if (response.ok) return { result: 'shipped' };
    const status = String(response.status);
    return retriable(response.status) ? { result: 'retry', status } : { result: 'rejected', status };
  } catch (err) {
    const cause = (err as { cause?: { code?: unknown } }).cause;
    const code = typeof cause?.code === 'string' ? cause.code : err instanceof Error ? err.name : 'error';
    return { result: 'retry', status: code };
  } finally {
    bound.clear();
  }
}
