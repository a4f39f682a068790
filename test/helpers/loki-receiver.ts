/**
 * A stand-in Loki for tests: an HTTP server on 127.0.0.1 that records every push to `/loki/api/v1/push` (headers and the
 * parsed JSON body) and answers as told — `ok` (204, like Loki), `error` (500), `unavailable` (503, an ingester
 * restarting), `reject` (400, what Loki says to a batch it will never take) or `hang` (never answers, a slow Loki); with
 * `maxBodyBytes` set, a larger push gets 413 as a proxy's body limit answers it. `stop()`
 * closes the listener (pushes get connection refused) and `restart()` listens again on the same port.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One stream of a Loki JSON push. */
export interface LokiStream {
  stream: Record<string, string>;
  values: Array<[string, string] | [string, string, Record<string, string>]>;
}

/** One recorded push. */
export interface LokiPush {
  path: string;
  method: string;
  headers: IncomingHttpHeaders;
  body: { streams: LokiStream[] };
  /** True when the push was answered 2xx: its lines are stored. */
  accepted: boolean;
}

export type LokiReceiverMode = 'ok' | 'error' | 'unavailable' | 'reject' | 'hang';

const STATUS: Record<Exclude<LokiReceiverMode, 'hang'>, number> = { ok: 204, error: 500, unavailable: 503, reject: 400 };

export interface LokiReceiver {
  url: string;
  pushes: LokiPush[];
  mode: LokiReceiverMode;
  /** When set, a push whose body is larger is answered 413 (a proxy's body limit) and not stored. */
  maxBodyBytes: number | undefined;
  /** Every line of an accepted push, in arrival order, with its stream labels: what Loki stored. */
  lines(): Array<{ labels: Record<string, string>; timestamp: string; line: string }>;
  /** Closes the listener: pushes get connection refused until `restart()`. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  restart(): Promise<void>;
  /** Resolves once `predicate` holds, polling every 20 ms; rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a receiver on a free loopback port. */
export async function startLokiReceiver(mode: LokiReceiverMode = 'ok'): Promise<LokiReceiver> {
  const pushes: LokiPush[] = [];
  const hanging = new Set<ServerResponse>();
  const state: { mode: LokiReceiverMode; maxBodyBytes: number | undefined } = { mode, maxBodyBytes: undefined };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      if (state.maxBodyBytes !== undefined && raw.length > state.maxBodyBytes) {
        pushes.push({ path: req.url ?? '', method: req.method ?? '', headers: req.headers, body: { streams: [] }, accepted: false });
        res.statusCode = 413;
        res.end('request entity too large');
        return;
      }
      const text = raw.toString('utf8');
      let body: LokiPush['body'] = { streams: [] };
      try {
        body = JSON.parse(text) as LokiPush['body'];
      } catch {
        // recorded as an empty push; the test's assertions on the body will fail
      }
      const mode = state.mode;
      pushes.push({ path: req.url ?? '', method: req.method ?? '', headers: req.headers, body, accepted: mode === 'ok' });
      if (mode === 'hang') {
        hanging.add(res);
        return;
      }
      res.statusCode = STATUS[mode];
      res.end(mode === 'ok' ? undefined : mode === 'reject' ? 'entry out of order' : 'ingester unavailable');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    pushes,
    get mode() {
      return state.mode;
    },
    set mode(m: LokiReceiverMode) {
      state.mode = m;
    },
    get maxBodyBytes() {
      return state.maxBodyBytes;
    },
    set maxBodyBytes(bytes: number | undefined) {
      state.maxBodyBytes = bytes;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async restart() {
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
    lines() {
      return pushes.filter((p) => p.accepted).flatMap((p) =>
        p.body.streams.flatMap((s) => s.values.map((v) => ({ labels: s.stream, timestamp: v[0], line: v[1] }))),
      );
    },
    async waitFor(predicate, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error(`loki receiver: condition not met within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
