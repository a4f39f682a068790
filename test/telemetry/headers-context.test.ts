/**
 * contextFromHeaders hands a request to the propagators only when it carries one of their headers, and only under
 * propagators known to read nothing else (W3C trace context and baggage, the default).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { propagation, ROOT_CONTEXT, trace, type Context, type TextMapGetter, type TextMapPropagator } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

// tracing.ts reads OTEL_PROPAGATORS once, when it is loaded: this test is about the default, whatever the shell exported.
delete process.env.OTEL_PROPAGATORS;
const { contextFromHeaders, propagatorsReadOnlyTheirFields } = await import('../../src/telemetry/tracing.js');

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT = 'b7ad6b7169203331';

/** The W3C propagator, counting the requests it is handed. */
class CountingPropagator implements TextMapPropagator {
  readonly inner = new W3CTraceContextPropagator();
  extracted = 0;
  inject(): void {}
  extract(context: Context, carrier: unknown, getter: TextMapGetter): Context {
    this.extracted++;
    return this.inner.extract(context, carrier, getter);
  }
  fields(): string[] {
    return this.inner.fields();
  }
}

describe('context from request headers', () => {
  const counting = new CountingPropagator();
  before(() => propagation.setGlobalPropagator(counting));
  after(() => propagation.disable());

  it('follows a traceparent header', () => {
    const ctx = contextFromHeaders({ traceparent: `00-${TRACE}-${PARENT}-01`, host: 'x' });
    assert.equal(trace.getSpanContext(ctx)?.traceId, TRACE);
    assert.equal(counting.extracted, 1);
  });

  it('does not call the propagators for a request without any of their headers', () => {
    const before = counting.extracted;
    assert.equal(contextFromHeaders({ host: 'x', 'user-agent': 'y' }), ROOT_CONTEXT);
    assert.equal(counting.extracted, before);
  });

  it('knows which propagators read only their fields', () => {
    for (const value of [undefined, '', 'tracecontext,baggage', ' tracecontext ', 'none']) {
      assert.equal(propagatorsReadOnlyTheirFields(value), true, String(value));
    }
    for (const value of ['b3', 'b3multi', 'tracecontext,jaeger', 'xray']) {
      assert.equal(propagatorsReadOnlyTheirFields(value), false, value);
    }
  });
});
