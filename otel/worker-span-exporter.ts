/**
 * The OTLP/HTTP span exporter, with the sending in a worker thread (otel/span-export-worker.ts says why). The main thread
 * serialises each batch (protobuf or JSON, the OTLP exporter library's own serialisers) and hands the bytes over; the
 * worker POSTs them with the library's transport and answers each batch with success or the error.
 *
 * The worker starts with the exporter, at the process's start: started by the first batch instead, its start-up (~0.12 s
 * of CPU, ~15 MiB) fell into the first burst of traffic (bench/README.md). It is unref'd while nothing is in flight, so
 * an idle exporter never holds the process open; a batch in flight does, as the HTTP request of an in-thread exporter
 * would. If the worker dies, the batches it held fail (the BatchSpanProcessor reports them through `diag` and counts
 * their spans lost, otel/counted-span-processor.ts) and the next batch starts a new one.
 */
import { Worker } from 'node:worker_threads';
import { diag } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { JsonTraceSerializer, ProtobufTraceSerializer, type ISerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { OtlpProtocol } from './options.js';

/** What the worker is started with. */
export interface SpanExportWorkerData {
  protocol: OtlpProtocol;
}

/** Main thread → worker. */
export type SpanExportRequest =
  | { type: 'export'; id: number; body: Uint8Array }
  | { type: 'flush'; id: number }
  | { type: 'shutdown'; id: number };

/** Worker → main thread: one per request; `error` when it failed. */
export interface SpanExportAnswer {
  id: number;
  error?: { name: string; message: string };
}

/** A request before its id is assigned (each member of the union without `id`). */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

interface Pending {
  resolve(): void;
  reject(error: Error): void;
}

/** The worker's young generation limit (V8 semi-spaces), in MiB. */
const WORKER_YOUNG_GENERATION_MB = 2;

// Under tsx (tests, development) the worker needs tsx registered first; compiled builds load the .js.
const WORKER_FILE = import.meta.url.endsWith('.ts') ? './span-export-worker.dev.mjs' : './span-export-worker.js';

export class WorkerSpanExporter implements SpanExporter {
  readonly #protocol: OtlpProtocol;
  readonly #workerFile: URL;
  readonly #serializer: ISerializer<ReadableSpan[], unknown>;
  readonly #pending = new Map<number, Pending>();
  #worker: Worker | undefined;
  #nextId = 0;
  #shutDown = false;

  /** `workerFile` replaces the worker's entry (tests); it gets the same `workerData` and messages. */
  constructor(protocol: OtlpProtocol, { workerFile = new URL(WORKER_FILE, import.meta.url) }: { workerFile?: URL } = {}) {
    this.#protocol = protocol;
    this.#workerFile = workerFile;
    this.#serializer = protocol === 'http/json' ? JsonTraceSerializer : ProtobufTraceSerializer;
    this.#worker = this.#start();
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.#shutDown) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('the span exporter is shut down') });
      return;
    }
    let serialised: Uint8Array | undefined;
    try {
      serialised = this.#serializer.serializeRequest(spans);
    } catch (err) {
      resultCallback({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
      return;
    }
    if (serialised === undefined) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('nothing to send') });
      return;
    }
    // Copied to the worker (structured clone), never transferred: transferring detaches an ArrayBuffer, and the first
    // detach in a process invalidates V8's ArrayBufferDetaching protector for good. Every optimised function that reads a
    // typed array (Buffer, ws, the socket writes) is then thrown away at once and rebuilt with detach checks: ~200 ms of
    // recompilation, then 2-5 % more CPU per delivery and per connect (bench/README.md). A clone copies the whole
    // ArrayBuffer behind a view, so a view of a larger buffer (Node's Buffer pool) is cut to its own bytes first.
    const body = serialised.byteOffset === 0 && serialised.byteLength === serialised.buffer.byteLength ? serialised : serialised.slice();
    this.#call({ type: 'export', body }).then(
      () => resultCallback({ code: ExportResultCode.SUCCESS }),
      (error: Error) => resultCallback({ code: ExportResultCode.FAILED, error }),
    );
  }

  /** Resolves when every batch handed to the worker so far has been answered. */
  forceFlush(): Promise<void> {
    if (this.#worker === undefined) return Promise.resolve();
    return this.#call({ type: 'flush' });
  }

  /** Waits for the batches in flight (the transport's own timeout bounds them), then stops the worker. */
  async shutdown(): Promise<void> {
    this.#shutDown = true;
    const worker = this.#worker;
    if (worker === undefined) return;
    try {
      await this.#call({ type: 'shutdown' });
    } finally {
      this.#worker = undefined;
      await worker.terminate();
    }
  }

  #call(request: WithoutId<SpanExportRequest>): Promise<void> {
    const worker = (this.#worker ??= this.#start());
    const id = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      if (this.#pending.size === 0) worker.ref();
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ ...request, id });
    });
  }

  #start(): Worker {
    const data: SpanExportWorkerData = { protocol: this.#protocol };
    // No execArgv: the worker needs none of the process's flags (the telemetry bootstrap's --import among them). A small
    // young generation: the bodies it sends live outside its heap, and V8's default let its RSS grow by ~17 MiB under
    // sustained export (7 MiB at this limit, same CPU; bench/README.md).
    const worker = new Worker(this.#workerFile, {
      workerData: data,
      execArgv: [],
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    worker.unref();
    worker.on('message', (answer: SpanExportAnswer) => {
      const pending = this.#pending.get(answer.id);
      if (pending === undefined) return;
      this.#pending.delete(answer.id);
      if (this.#pending.size === 0) worker.unref();
      if (answer.error === undefined) pending.resolve();
      else pending.reject(Object.assign(new Error(answer.error.message), { name: answer.error.name }));
    });
    worker.on('error', (err) => diag.error('the span export worker failed', err));
    worker.on('exit', (code) => {
      if (this.#worker === worker) this.#worker = undefined;
      const lost = [...this.#pending.values()];
      this.#pending.clear();
      const error = new Error(`the span export worker exited (code ${code}) before answering`);
      for (const pending of lost) pending.reject(error);
    });
    return worker;
  }
}
