/**
 * The repetitions of a bench command that compares several servers or topologies: each repetition runs every one of them,
 * back to back, in an order rotated per repetition, under a progress bar.
 */
import cliProgress from 'cli-progress';

/** What to run. */
export interface RotatedRuns<I extends string, R> {
  /** The command's name, at the start of the progress bar. */
  name: string;
  runs: number;
  /** What each repetition runs, in the first repetition's order. */
  items: readonly I[];
  /** How many recent steps the progress bar's time estimate averages. */
  etaBuffer: number;
  /** Runs `item` in `repetition` (from 0); failures belong in its record, a throw ends every run. */
  run: (item: I, repetition: number) => Promise<R>;
}

/** Runs every item once per repetition and returns their records in the order they ran. */
export async function runRotated<I extends string, R>(o: RotatedRuns<I, R>): Promise<R[]> {
  const records: R[] = [];
  const bar = new cliProgress.SingleBar(
    { format: `${o.name} [{bar}] {value}/{total} | {eta_formatted} left | {current}`, hideCursor: true, etaBuffer: o.etaBuffer },
    cliProgress.Presets.shades_classic,
  );
  bar.start(o.runs * o.items.length, 0, { current: '' });
  try {
    for (let repetition = 0; repetition < o.runs; repetition++) {
      // Rotated per repetition so no item always runs first (or right after the same neighbour).
      const order = o.items.map((_, i) => o.items[(i + repetition) % o.items.length]!);
      for (const item of order) {
        bar.update({ current: `${item} (run ${repetition + 1})` });
        records.push(await o.run(item, repetition));
        bar.increment();
      }
    }
  } finally {
    bar.stop();
  }
  return records;
}
