/**
 * The real tracing SDK in the test's own process, its spans kept in memory: a provider (always on, unless `sampler`) and
 * the W3C propagator installed globally before the file's tests and removed after them, as otel/sdk.ts installs them.
 */
import { after, before } from 'node:test';
import { propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type Sampler } from '@opentelemetry/sdk-trace-base';

/** Installs the SDK for the calling test file (registers its `before` / `after` hooks); returns where spans land. */
export function inMemoryTracing(sampler?: Sampler): InMemorySpanExporter {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ ...(sampler === undefined ? {} : { sampler }), spanProcessors: [new SimpleSpanProcessor(exporter)] });
  before(() => {
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  after(async () => {
    await provider.shutdown();
    trace.disable();
    propagation.disable();
  });
  return exporter;
}
