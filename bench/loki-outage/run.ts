/**
 * Loki outage: does a Loki that is away for 30 s lose log lines at the default settings (LOKI_SPOOL_MAX_BYTES 32 MiB,
 * batches every second, 5 s push timeout, back-off 250 ms → 4 s)? A logger made exactly as Beacon makes it (createLogger
 * with `loki`) writes Beacon-like lines at a steady rate to a stand-in Loki on 127.0.0.1 (test/helpers/loki-receiver.ts)
 * that answers 204, then 503 for half the outage, then refuses connections for the other half, then 204 again. Reports, per
 * rate: lines written, stored by Loki (distinct), duplicates, whether they are in written order, drops by reason, and how
 * long after Loki came back every line written so far was stored.
 *
 *   node --import tsx bench/loki-outage/run.ts [--outage-s 30] [--rate 100 --rate 1000] [--runs 1]
 *
 * Writes bench/results/loki-outage.json; `node --import tsx bench/render-results.ts` renders RESULTS.md.
 */
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { createLogger, flushLogger, logShippingCounts } from '../../src/telemetry/logger.js';
import { startLokiReceiver } from '../../test/helpers/loki-receiver.js';
import { commandLine, machineStamp, writeResults, type ResultRow } from '../results-format.js';

const { values } = parseArgs({
  options: {
    'outage-s': { type: 'string', default: '30' },
    rate: { type: 'string', multiple: true, default: ['100', '1000'] },
    runs: { type: 'string', default: '1' },
  },
});
const OUTAGE_MS = Number(values['outage-s']) * 1000;
const BEFORE_MS = 3000;
const AFTER_MS = 3000;
const RECOVERY_BOUND_MS = 30_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function run(rate: number): Promise<ResultRow> {
  const loki = await startLokiReceiver('ok');
  const stdout = new Writable({ write: (_c, _e, cb) => cb() });
  const logger = createLogger({ serviceName: 'beacon', env: 'bench', nodeId: 'bench-1', level: 'info', destination: stdout, loki: { url: loki.url } });
  // A connection's worth of fields, ~300 bytes a line like Beacon's connection_closed.
  const child = logger.child({ session_id: '6f1c2a9e-8d7b-4c1e-9a0f-1b2c3d4e5f60', socket_id: '123456.654321', app_id: 'app-id' });
  let seq = 0;
  let writing = true;
  const writer = (async () => {
    const started = Date.now();
    while (writing) {
      const due = Math.floor(((Date.now() - started) / 1000) * rate);
      while (seq < due) {
        child.info({ event: 'connection_closed', seq, reason: 'client_close', code: 1000, duration_ms: 1234, messages_in: 12, messages_out: 34 }, 'connection closed');
        seq++;
      }
      await sleep(10);
    }
  })();
  // Sequence numbers Loki stored, in arrival order; read incrementally (re-parsing every line each poll would be the bottleneck).
  const seqs: number[] = [];
  let readPushes = 0;
  const stored = (): number[] => {
    for (; readPushes < loki.pushes.length; readPushes++) {
      const push = loki.pushes[readPushes];
      if (push === undefined || !push.accepted) continue;
      for (const s of push.body.streams) {
        for (const v of s.values) {
          const n = (JSON.parse(v[1]) as { seq?: number }).seq;
          if (typeof n === 'number') seqs.push(n);
        }
      }
    }
    return seqs;
  };

  await sleep(BEFORE_MS);
  loki.mode = 'unavailable';
  await sleep(OUTAGE_MS / 2);
  await loki.stop();
  await sleep(OUTAGE_MS / 2);
  await loki.restart();
  loki.mode = 'ok';
  const backAt = Date.now();
  const writtenAtReturn = seq;
  let recoveryMs: number | null = null;
  while (Date.now() - backAt < RECOVERY_BOUND_MS) {
    if (stored().length >= writtenAtReturn && new Set(seqs).size >= writtenAtReturn) {
      recoveryMs = Date.now() - backAt;
      break;
    }
    await sleep(50);
  }
  await sleep(AFTER_MS);
  writing = false;
  await writer;
  const written = seq;
  await flushLogger(logger, 10_000);
  stored();
  const distinct = new Set(seqs);
  let inOrder = true;
  for (let i = 1; i < seqs.length; i++) if ((seqs[i] as number) < (seqs[i - 1] as number)) inOrder = false;
  const counts = logShippingCounts(logger);
  await loki.close();
  return {
    name: `${rate} lines/s, ${OUTAGE_MS / 1000} s outage`,
    lines_written: written,
    lines_in_loki: distinct.size,
    lost: written - distinct.size,
    duplicates: seqs.length - distinct.size,
    in_order: inOrder ? 'yes' : 'no',
    dropped_spool_full: counts?.dropped.spool_full ?? null,
    dropped_rejected: counts?.dropped.rejected ?? null,
    dropped_shutdown: counts?.dropped.shutdown ?? null,
    failed_pushes: loki.pushes.filter((p) => !p.accepted).length,
    caught_up_after_ms: recoveryMs,
  };
}

const rows: ResultRow[] = [];
for (let r = 0; r < Number(values.runs); r++) {
  for (const rate of values.rate.map(Number)) {
    const row = await run(rate);
    process.stdout.write(`${JSON.stringify(row)}\n`);
    rows.push(row);
  }
}
writeResults('bench/results/loki-outage.json', {
  scenario: 'loki-outage',
  title: 'Loki outage: log lines lost across a Loki outage (default settings)',
  command: commandLine('bench:loki-outage'),
  ...machineStamp(['src/telemetry']),
  runs: Number(values.runs),
  rows,
  notes: [
    `Loki stand-in on 127.0.0.1: 204, then 503 for ${OUTAGE_MS / 2000} s, then connection refused for ${OUTAGE_MS / 2000} s, then 204; ${BEFORE_MS / 1000} s of logging before and ${AFTER_MS / 1000} s after.`,
    'The logger is createLogger with only LOKI_URL set (every other Loki setting at its default), writing ~300-byte lines at a steady rate; lines_in_loki counts distinct lines the stand-in stored (2xx pushes).',
    'caught_up_after_ms: from Loki accepting again until every line written up to that moment was stored.',
  ],
});
