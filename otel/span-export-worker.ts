/**
 * The span export worker: sends the OTLP trace requests that the main thread serialised (otel/worker-span-exporter.ts)
 * to the collector, with the OTLP exporter library's own HTTP transport — endpoint, headers, timeout, compression and
 * retries from the standard `OTEL_EXPORTER_OTLP_*` variables, exactly as `OTLPTraceExporter` would on the main thread.
 *
 * Why a thread: the exporter's HTTP requests run Node's stream code (`Writable`, the socket), which the main thread also
 * runs for every WebSocket write. Their different objects made V8 deoptimise and recompile that code again and again
 * while traces were exported (bench/README.md, "Telemetry on: what the span exports cost the socket writes"). A worker
 * has its own heap and its own compiled code.
 *
 * Messages: `{ type: 'export', id, body }`, `{ type: 'flush', id }`, `{ type: 'shutdown', id }` in; `{ id, error? }` out,
 * one answer per message.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { ExportResultCode } from '@opentelemetry/core';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { JsonTraceSerializer, ProtobufTraceSerializer, type ISerializer } from '@opentelemetry/otlp-transformer';
import { installDiagLogger } from './diagnostics.js';
import type { SpanExportRequest, SpanExportAnswer, SpanExportWorkerData } from './worker-span-exporter.js';

installDiagLogger({ consoleWhenLevelSet: true });

const { protocol } = workerData as SpanExportWorkerData;
const responses = protocol === 'http/json' ? JsonTraceSerializer : ProtobufTraceSerializer;
// The body arrives serialised; only the collector's answer (partial success) is decoded here.
const passThrough: ISerializer<Uint8Array, unknown> = {
  serializeRequest: (body) => body,
  deserializeResponse: (data) => responses.deserializeResponse(data),
};
const contentType = protocol === 'http/json' ? 'application/json' : 'application/x-protobuf';
const delegate = createOtlpHttpExportDelegate(
  convertLegacyHttpOptions({}, 'TRACES', 'v1/traces', { 'Content-Type': contentType }),
  passThrough,
  'otlp_http_span_exporter',
  // The exporter's self-metrics are not collected (no meter provider here): nothing to count.
  { name: 'span', countItems: () => 0 },
  undefined,
);

if (parentPort === null) throw new Error('span-export-worker.ts runs only as a worker thread');
const port: MessagePort = parentPort;

function answer(id: number, error?: unknown): void {
  const message: SpanExportAnswer =
    error === undefined
      ? { id }
      : {
          id,
          error: {
            name: error instanceof Error ? error.name : 'Error',
            message: error instanceof Error ? error.message : String(error),
          },
        };
  port.postMessage(message);
}

port.on('message', (request: SpanExportRequest) => {
  switch (request.type) {
    case 'export':
      delegate.export(request.body, (result) =>
        answer(request.id, result.code === ExportResultCode.SUCCESS ? undefined : (result.error ?? new Error('export failed'))),
      );
      return;
    case 'flush':
      delegate.forceFlush().then(() => answer(request.id), (err: unknown) => answer(request.id, err));
      return;
    case 'shutdown':
      delegate.shutdown().then(() => answer(request.id), (err: unknown) => answer(request.id, err));
      return;
  }
});
