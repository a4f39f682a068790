/**
 * The pino transport that ships log lines to Loki. It runs inside pino's worker thread (never on the app's event loop) and
 * is pino-loki with a thin layer around its HTTP pushes:
 * - labels are exactly `service_name`, `env`, `level` — whatever a line contains, nothing else can become a label (pino-loki
 *   would promote a `hostname` field); streams with the same labels are merged into one entry per push;
 * - every push reports how many lines Loki accepted and how many were lost (HTTP error, timeout, Loki down) to the main
 *   thread as a `loki_stats` event, so the app can count and log what was dropped.
 * The worker receives `LokiWorkerOptions` by structured clone; the main-thread side is `loki.ts`.
 */
import { parentPort } from 'node:worker_threads';
import { pinoLoki, type LokiOptions } from 'pino-loki';

/** What the main thread passes to the worker (plain data: it crosses threads by structured clone). */
export interface LokiWorkerOptions {
  url: string;
  serviceName: string;
  env: string;
  username: string | undefined;
  password: string | undefined;
  tenantId: string | undefined;
  batchIntervalMs: number;
  maxBufferLines: number;
  timeoutMs: number;
  /**
   * Lines Loki accepted (`[SHIPPED]`) and lines lost in failed pushes (`[FAILED]`), shared with the main thread: the
   * counts are exact the moment the worker exits, with no message that could arrive after it.
   */
  counters: BigInt64Array;
}

/** Index of the shipped-lines counter in `LokiWorkerOptions.counters`. */
export const SHIPPED = 0;
/** Index of the failed-lines counter in `LokiWorkerOptions.counters`. */
export const FAILED = 1;

/** Name of the thread-stream event (thread-stream re-emits `{ code: 'EVENT' }` messages) sent when a push failed. */
export const LOKI_PUSH_FAILED_EVENT = 'loki_push_failed';

/** The only stream labels Loki ever sees (docs/telemetry.md); session and trace ids stay in the line. */
export const LOKI_LABELS = ['service_name', 'env', 'level'] as const;

/**
 * pino level name → `level` label. pino-loki looks the line's `level` up in this map; Beacon's lines carry pino's level
 * names (logger.ts formats them), so the label is the same word as the line's `level` field (Grafana understands all six).
 * pino-loki types the map with numeric keys and Loki's own words, hence the cast.
 */
const LEVEL_LABELS = { trace: 'trace', debug: 'debug', info: 'info', warn: 'warn', error: 'error', fatal: 'fatal' };

interface PushBody {
  streams: Array<{ stream: Record<string, unknown>; values: unknown[] }>;
}

function isPushBody(value: unknown): value is PushBody {
  return typeof value === 'object' && value !== null && Array.isArray((value as { streams?: unknown }).streams);
}

const TIME_FIELD = /"time":"([^"]+)"/;

/**
 * Loki wants the timestamp as a string of nanoseconds. Beacon's lines carry an ISO `time` (logger.ts), which pino-loki
 * cannot convert (it expects epoch milliseconds and sends "NaN"), so it is read back from the line here.
 */
export function nanosecondsOf(line: unknown, fallbackMs: number): string {
  const match = typeof line === 'string' ? TIME_FIELD.exec(line) : null;
  const ms = match?.[1] === undefined ? Number.NaN : Date.parse(match[1]);
  return `${Number.isFinite(ms) ? ms : fallbackMs}000000`;
}

/**
 * Keeps only the allowed labels, merges streams that end up with the same label set, and sets each value's timestamp
 * from its line's `time`.
 */
export function normalisePushBody(body: PushBody): { body: PushBody; lines: number } {
  const now = Date.now();
  const merged = new Map<string, { stream: Record<string, string>; values: unknown[] }>();
  let lines = 0;
  for (const entry of body.streams) {
    const stream: Record<string, string> = {};
    for (const label of LOKI_LABELS) {
      const v = entry.stream[label];
      if (typeof v === 'string') stream[label] = v;
    }
    const key = `${stream.service_name}\u0000${stream.env}\u0000${stream.level}`;
    let target = merged.get(key);
    if (target === undefined) {
      target = { stream, values: [] };
      merged.set(key, target);
    }
    for (const value of entry.values) {
      if (!Array.isArray(value) || value.length < 2) continue;
      target.values.push([nanosecondsOf(value[1], now), value[1]]);
      lines++;
    }
  }
  return { body: { streams: [...merged.values()] }, lines };
}

/** Wraps this worker's `fetch` (pino-loki's only way out) to normalise bodies and count outcomes. */
function instrumentFetch(counters: BigInt64Array): void {
  const realFetch = globalThis.fetch;
  const failed = (lines: number): void => {
    Atomics.add(counters, FAILED, BigInt(lines));
    parentPort?.postMessage({ code: 'EVENT', name: LOKI_PUSH_FAILED_EVENT, args: [] });
  };
  globalThis.fetch = async (input, init) => {
    let lines = 0;
    let request = init;
    if (typeof init?.body === 'string') {
      const parsed: unknown = JSON.parse(init.body);
      if (isPushBody(parsed)) {
        const normalised = normalisePushBody(parsed);
        lines = normalised.lines;
        request = { ...init, body: JSON.stringify(normalised.body) };
      }
    }
    try {
      const response = await realFetch(input, request);
      if (response.ok) Atomics.add(counters, SHIPPED, BigInt(lines));
      else failed(lines);
      return response;
    } catch (err) {
      failed(lines);
      throw err;
    }
  };
}

/** The transport entry pino's worker calls with the options given to `pino.transport`. */
export default function lokiTransport(options: LokiWorkerOptions): ReturnType<typeof pinoLoki> {
  instrumentFetch(options.counters);
  const headers: Record<string, string> = {};
  if (options.tenantId !== undefined) headers['X-Scope-OrgID'] = options.tenantId;
  const lokiOptions: LokiOptions = {
    host: options.url,
    timeout: options.timeoutMs,
    // Failures are counted and reported by the app (loki.ts), not printed by the worker once per batch.
    silenceErrors: true,
    batching: { interval: options.batchIntervalMs / 1000, maxBufferSize: options.maxBufferLines },
    labels: { service_name: options.serviceName, env: options.env },
    levelMap: LEVEL_LABELS as unknown as LokiOptions['levelMap'],
    headers,
    // Structured metadata is off: the line is the whole JSON object.
    structuredMetaKey: false,
  };
  if (options.username !== undefined && options.password !== undefined) {
    lokiOptions.basicAuth = { username: options.username, password: options.password };
  }
  return pinoLoki(lokiOptions);
}
