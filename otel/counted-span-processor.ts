/**
 * The SDK's BatchSpanProcessor, built so that it counts what it loses. Since 2.x it reports its own metrics to a
 * `selfObsMeterProvider` (OpenTelemetry's SDK self-observability conventions): `otel_sdk_processor_span_processed_total`
 * with `error_type` = `queue_full` for every span dropped because its queue was full, the exporter's error name for the
 * spans of a batch whose export failed, and no `error_type` for the exported ones; `otel_sdk_processor_span_queue_size`
 * and `…_queue_capacity`. Without them a lost span shows only as a line on stderr (docs/telemetry.md).
 *
 * It reads the meter provider when it is built, and NodeSDK creates its MeterProvider only in `start()`, after it was
 * handed the span processors. So the processor is built by `build()`, which register.ts calls once the SDK has started
 * (the global provider is registered by then: the no-op one when metrics are off), or else at its first use.
 * The SDK's Tracer metrics (`OTEL_NODE_EXPERIMENTAL_SDK_METRICS`: a counter per started span) are not switched on.
 */
import type { Context, MeterProvider } from '@opentelemetry/api';
import { metrics } from '@opentelemetry/api';
import { BatchSpanProcessor, type BufferConfig, type ReadableSpan, type Span, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

export class CountedBatchSpanProcessor implements SpanProcessor {
  readonly #exporter: SpanExporter;
  #processor: BatchSpanProcessor | undefined;

  constructor(exporter: SpanExporter) {
    this.#exporter = exporter;
  }

  /** Builds the batch processor now (its queue capacity is on /metrics from then on); call after the SDK's `start()`. */
  build(): void {
    void this.#batch;
  }

  /** The batch processor (the `OTEL_BSP_*` variables apply), with the meter provider registered by now. */
  get #batch(): BatchSpanProcessor {
    if (this.#processor !== undefined) return this.#processor;
    // The config type of the sdk-trace-base export predates the option; its constructor passes it through.
    const config: BufferConfig & { selfObsMeterProvider: MeterProvider } = { selfObsMeterProvider: metrics.getMeterProvider() };
    return (this.#processor = new BatchSpanProcessor(this.#exporter, config));
  }

  onStart(span: Span, parentContext: Context): void {
    this.#batch.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    this.#batch.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.#batch.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.#batch.shutdown();
  }
}
