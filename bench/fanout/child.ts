/** The protocol between bench/run.ts and its load processes: options as argv JSON in, one `RESULT {json}` line out. */

/** Parses the options of a load process (argv[2]), runs `main`, prints `RESULT <json>` and exits 0 (1 with the error). */
export function runLoadProcess<O, R>(main: (options: O) => Promise<R>): void {
  const options = JSON.parse(process.argv[2] ?? '{}') as O;
  main(options).then(
    (result) => {
      process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(0));
    },
    (err: unknown) => {
      process.stderr.write(`load: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`, () => process.exit(1));
    },
  );
}

/** Opens `count` connections with `open(i)`, at most `concurrency` handshakes in flight. */
export async function openAll<T>(count: number, concurrency: number, open: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      out[i] = await open(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return out;
}
