/**
 * The flooding client of bench/unsigned-flood/run.ts, in its own process so that its work (building and sending ~1 MB
 * bodies) does not share the event loop with the canary being measured. Args: port, loops. POSTs unsigned ~1 MB JSON
 * bodies to /apps/app-id/events back to back until SIGTERM, then prints how many were answered.
 */
const [port, loops] = process.argv.slice(2).map(Number) as [number, number];
/** ~1 MB of valid JSON (under the API's body limit at the defaults, 6.1 MB since it allows for escaping), as a flood of publishes would send (built once). */
const BODY = Buffer.from(
  JSON.stringify({ name: 'ev', channel: 'c', data: JSON.stringify({ items: Array.from({ length: 18_000 }, (_, i) => ({ id: i, v: 'x'.repeat(30) })) }) }),
);
let running = true;
let answered = 0;
process.once('SIGTERM', () => {
  running = false;
});
await Promise.all(
  Array.from({ length: loops }, async () => {
    while (running) {
      const res = await fetch(`http://127.0.0.1:${port}/apps/app-id/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: BODY,
      }).catch(() => undefined);
      await res?.arrayBuffer().catch(() => undefined);
      if (res !== undefined && answered++ === 0) process.stdout.write('ready\n');
    }
  }),
);
process.stdout.write(`answered ${answered}\n`);
