/**
 * The live progress line on stderr: a cli-progress bar redrawn in place on a terminal, a plain line every few seconds
 * otherwise (a log file or CI keeps every line readable).
 */
import cliProgress from 'cli-progress';
import type { ProgressStatus } from './run.js';

/** The live progress display. */
export interface Progress {
  update(status: ProgressStatus): void;
  stop(): void;
}

const PLAIN_EVERY_MS = 5000;

function fields(s: ProgressStatus): string {
  return (
    `open ${s.open}/${s.sockets} | out ${s.outPerSecond.toFixed(1)}/s | in ${s.inPerSecond.toFixed(1)}/s | ` +
    `errors ${s.errors} | p99 ${s.p99Ms.toFixed(2)} ms`
  );
}

/** A progress display on `stream`: a redrawn bar on a terminal, plain lines otherwise. */
export function createProgress(stream: NodeJS.WriteStream, tty: boolean): Progress {
  if (!tty) {
    let last = 0;
    return {
      update(s) {
        const now = Date.now();
        if (now - last < PLAIN_EVERY_MS) return;
        last = now;
        stream.write(`[${s.phase} ${s.phaseElapsed.toFixed(0)}/${s.phaseTotal.toFixed(0)} s] ${fields(s)}\n`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: '{phase} [{bar}] {elapsed}/{planned} s | {fields}', stream, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(s) {
      const total = Math.max(1, Math.ceil(s.phaseTotal));
      const payload = { phase: s.phase.padEnd(6), elapsed: s.phaseElapsed.toFixed(0), planned: total, fields: fields(s) };
      if (!started) {
        bar.start(total, 0, payload);
        started = true;
      }
      bar.setTotal(total);
      bar.update(Math.min(total, s.phaseElapsed), payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
