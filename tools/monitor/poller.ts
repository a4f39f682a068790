/**
 * A source polled on a timer, one poll at a time: a tick that comes while the previous poll is still waiting is skipped
 * and counted, never queued behind it (a Loki that accepts connections and never answers used to collect a backlog of
 * polls that the end of the run then drained, 5 s each). Every poll is bounded in time; when the run ends, a poll in
 * flight gets until the end's deadline and is then aborted. Problems are said once per episode (again after the source
 * answered), and what happened is kept for the summary.
 */
import { abortAfter } from '../../src/lifecycle/abort-after.js';
import { Deadline } from '../../src/lifecycle/deadline.js';

/** How a polled source fared over the run (the summary's `logSources`). */
export interface SourceStatus {
  /** What was polled: `loki http://…`, `log file PATH`, `stdin`. */
  source: string;
  /** Polls started (the last one at the end included). */
  polls: number;
  /** Polls that failed: an error, no answer in time, or still waiting when the run ended. */
  failedPolls: number;
  /** Ticks skipped because the previous poll was still waiting. */
  skippedPolls: number;
  /** When the first of the failures still going on at the end started (ISO); undefined when the last poll answered. */
  failingSince: string | undefined;
  /** Why the last failed poll failed. */
  lastError: string | undefined;
  /** A poll was still waiting when the run ended; it was aborted. */
  unansweredAtEnd: boolean;
  /**
   * A stream (stdin) whose input ended during the run: when (ISO), and after how many lines. Nothing written later was
   * read, so its counts cover only the time before; a stream has no polls to fail, and this is how it says so.
   */
  ended?: { at: string; lines: number };
}

/** A running poller. */
export interface Poller {
  status(): SourceStatus;
  /**
   * Stops the timer and takes a last poll (unless one is in flight); what is in flight by `deadline` (ms since the epoch)
   * is aborted and counted as failed. Resolves by the deadline (plus the time to abort), whatever the source does.
   */
  stop(deadline: number): Promise<void>;
}

/** What a failed poll or request reports: no answer in time, aborted at the end, an error code, or the message. */
export function failureText(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: Error & { code?: string } };
  if (e?.name === 'TimeoutError') return `no answer in ${timeoutMs / 1000} s`;
  if (e?.name === 'AbortError') return 'no answer by the end of the run';
  return e?.cause?.code ?? e?.message ?? String(err);
}

/**
 * True when `promise` settles by `deadline` (a `Date.now()` instant); false (and `promise` still running) otherwise. The
 * drain's own bound (src/lifecycle/deadline.ts), given the time left.
 */
export function settlesBy(promise: Promise<unknown>, deadline: number): Promise<boolean> {
  return new Deadline(Math.max(0, deadline - Date.now())).race(promise);
}

/** The status of a source nothing has polled yet (a stream read as it comes has no polls at all). */
export function freshStatus(source: string): SourceStatus {
  return { source, polls: 0, failedPolls: 0, skippedPolls: 0, failingSince: undefined, lastError: undefined, unansweredAtEnd: false };
}

/**
 * Calls `poll` every `everyMs`, bounded to `timeoutMs` by the signal it is given; `poll` resolves when the source
 * answered and throws when it did not. `onProblem` hears of failures, of skipped ticks and of the source answering again.
 */
export function pollEvery(
  source: string,
  options: { everyMs: number; timeoutMs: number },
  poll: (signal: AbortSignal) => Promise<void>,
  onProblem: (message: string) => void,
): Poller {
  const end = new AbortController();
  const st = freshStatus(source);
  let inFlight: { promise: Promise<void>; startedAt: string } | undefined;
  let stopped = false;
  /** What was said in this episode of failures (cleared when the source answers): each kind once. */
  const said = new Set<string>();
  const say = (message: string, kind = message) => {
    if (stopped || said.has(kind)) return;
    said.add(kind);
    onProblem(message);
  };
  const failed = (startedAt: string, reason: string) => {
    st.failedPolls++;
    st.failingSince ??= startedAt;
    st.lastError = reason;
    say(`${source}: ${reason}`);
  };

  const start = () => {
    st.polls++;
    const startedAt = new Date().toISOString();
    const bound = abortAfter(options.timeoutMs, end.signal);
    const current = { startedAt, promise: Promise.resolve() };
    current.promise = poll(bound.signal).then(
      () => {
        if (inFlight !== current) return; // given up at the end: already counted
        if (st.failingSince !== undefined && !stopped) onProblem(`${source}: answering again`);
        st.failingSince = undefined;
        said.clear();
      },
      (err: unknown) => {
        if (inFlight !== current) return;
        failed(startedAt, failureText(err, options.timeoutMs));
      },
    );
    inFlight = current;
    void current.promise.finally(() => {
      bound.clear();
      if (inFlight === current) inFlight = undefined;
    });
  };

  const timer = setInterval(() => {
    if (inFlight !== undefined) {
      st.skippedPolls++;
      say(`${source}: a poll is still waiting for an answer (since ${inFlight.startedAt.slice(11, 19)}); later ones are skipped until it ends`, 'skipped');
      return;
    }
    start();
  }, options.everyMs);

  return {
    status: () => ({ ...st }),
    async stop(deadline) {
      clearInterval(timer);
      if (inFlight === undefined && Date.now() < deadline) start(); // the last lines, up to the end
      const current = inFlight;
      if (current === undefined) return;
      if (await settlesBy(current.promise, deadline)) return;
      // Still waiting at the deadline: count it, then abort it (a fetch settles at once; nothing waits for it here).
      stopped = true;
      inFlight = undefined;
      st.unansweredAtEnd = true;
      failed(current.startedAt, 'no answer by the end of the run');
      end.abort();
    },
  };
}
