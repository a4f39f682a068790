// A Loki shipping worker that fails on its first line (test/telemetry/loki.test.ts: a worker that stops mid-run).
import build from 'pino-abstract-transport';

export default function failingLokiWorker() {
  return build(
    async (source) => {
      for await (const line of source) throw new Error(`the test worker fails on its first line (${line.length} characters)`);
    },
    { parse: 'lines' },
  );
}
