/**
 * Span names and attributes of the telemetry contract (docs/telemetry.md). The OpenTelemetry API is a no-op until the SDK in
 * otel/register.ts installs a provider, and attributes are only built when a span records.
 *
 * - `connect`          the WebSocket upgrade (SERVER); `process` spans link to it.
 * - `publish <type>`   an accepted event (PRODUCER), child of the HTTP API server span or of the client's `process` span.
 * - `deliver <type>`   the fan-out on one node (CONSUMER), child of `publish` through the envelope's trace context.
 * - `process <event>`  a client frame worth tracing (subscribe, signin, client-*), linked to `connect`.
 * The destination in a span name is always the bounded channel type, never a channel name.
 */
import {
  context,
  INVALID_SPAN_CONTEXT,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Context,
  type Link,
  type Span,
  type SpanContext,
  type SpanOptions,
} from '@opentelemetry/api';
import { parseTraceParent } from '@opentelemetry/core';
import { ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_URL_PATH, ATTR_URL_SCHEME } from '@opentelemetry/semantic-conventions';
import type { ChannelType } from '../protocol/channel-type.js';
import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
  ATTR_SESSION_ID,
} from './semconv.js';
import { ROOT_SAMPLED, rootSampling } from './root-sampling.js';

const tracer = trace.getTracer('beacon');

/**
 * Whether the sampler the SDK builds from `OTEL_TRACES_SAMPLER` follows a parent's decision: its default
 * (`parentbased_always_on`, also what an unknown value falls back to) and every `parentbased_*` do, and `always_off` records
 * nothing anyway. Under such a sampler a child of a parent that is not sampled is never recorded (the spec's default
 * `remoteParentNotSampled` / `localParentNotSampled` is always-off).
 */
export function samplerFollowsParent(sampler: string | undefined): boolean {
  const name = sampler?.trim().toLowerCase() ?? '';
  return name !== 'always_on' && name !== 'traceidratio';
}

const FOLLOWS_PARENT = samplerFollowsParent(process.env.OTEL_TRACES_SAMPLER);

/** A root not sampled whose context nobody reads: one shared non-recording span with the invalid context. */
const NOT_SAMPLED = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * Starts a span, skipping the SDK when its decision is known in advance:
 * - the parent is not sampled and the sampler follows it (95 % of publishes at 5 % sampling): the span returned carries the
 *   parent's context, as the API's no-op tracer does, so what it propagates stays unsampled;
 * - a new trace under a registered root ratio (root-sampling.ts): a draw the ratio does not keep gives a non-recording span
 *   with fresh ids; one it keeps goes to the SDK marked, and is recorded.
 * No ids (in the first case), no sampler call, no span object of the SDK. `contextRead` false: the caller reads a span's
 * context only when it records (a `connect` span), so a root the ratio does not keep gets no ids either.
 */
function startSpan(name: string, options: SpanOptions, parent: Context, contextRead = true): Span {
  const parentContext = trace.getSpanContext(parent);
  if (parentContext === undefined || !trace.isSpanContextValid(parentContext)) {
    const roots = rootSampling();
    if (roots !== undefined) {
      if (roots.random() >= roots.ratio) {
        if (!contextRead) return NOT_SAMPLED;
        return trace.wrapSpanContext({ traceId: roots.ids.generateTraceId(), spanId: roots.ids.generateSpanId(), traceFlags: TraceFlags.NONE });
      }
      return tracer.startSpan(name, options, parent.setValue(ROOT_SAMPLED, true));
    }
  } else if (FOLLOWS_PARENT && (parentContext.traceFlags & TraceFlags.SAMPLED) === 0) {
    return trace.wrapSpanContext(parentContext);
  }
  return tracer.startSpan(name, options, parent);
}

/** Attribute names: semantic conventions from ./semconv.ts, Beacon's own (`app.*`, `pusher.*`) here. */
export const Attr = {
  MessagingSystem: ATTR_MESSAGING_SYSTEM,
  MessagingOperationType: ATTR_MESSAGING_OPERATION_TYPE,
  MessagingOperationName: ATTR_MESSAGING_OPERATION_NAME,
  MessagingDestination: ATTR_MESSAGING_DESTINATION_NAME,
  MessagingMessageBodySize: ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  MessagingBatchCount: ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  AppId: 'app.id',
  SessionId: ATTR_SESSION_ID,
  SocketId: 'pusher.socket_id',
  EventName: 'pusher.event',
  Recipients: 'pusher.recipients',
  Dropped: 'pusher.dropped',
  Bytes: 'pusher.bytes',
} as const;

/** Ends a span as failed with one call. */
export function endWithError(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : new Error(String(err)));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  span.end();
}

/**
 * The upgrade span of a connection. Its context is read only when it records (for the links of later `process` spans):
 * a root not sampled is not given ids.
 */
export function startConnectSpan(appId: string, sessionId: string, socketId: string, parent: Context): Span {
  const span = startSpan('connect', { kind: SpanKind.SERVER }, parent, false);
  if (span.isRecording()) {
    span.setAttribute(Attr.MessagingSystem, 'pusher');
    span.setAttribute(Attr.AppId, appId);
    span.setAttribute(Attr.SessionId, sessionId);
    span.setAttribute(Attr.SocketId, socketId);
  }
  return span;
}

/**
 * The server span of one HTTP API request, continuing the caller's `traceparent`. Started by a fastify hook rather than by
 * @opentelemetry/instrumentation-http: the instrumentation wraps every request and response of the process whatever the
 * sampling decision, and cost +15-25 % CPU per delivered message in bench/telemetry-cost (see bench/RESULTS.md).
 */
export function startHttpServerSpan(
  method: string,
  route: string,
  headers: Record<string, string | string[] | undefined>,
  url: { scheme: string; path: string },
): Span {
  const span = startSpan(`${method} ${route}`, { kind: SpanKind.SERVER }, contextFromHeaders(headers));
  if (span.isRecording()) {
    span.setAttribute(ATTR_HTTP_REQUEST_METHOD, method);
    span.setAttribute(ATTR_HTTP_ROUTE, route);
    span.setAttribute(ATTR_URL_SCHEME, url.scheme);
    span.setAttribute(ATTR_URL_PATH, url.path);
  }
  return span;
}

/**
 * Ends an HTTP server span with its status code: a 5xx marks it failed, with the code as its `error.type`, as the HTTP
 * semantic conventions say (a 4xx is the client's: unset).
 */
export function endHttpServerSpan(span: Span, statusCode: number): void {
  if (span.isRecording()) {
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode);
    if (statusCode >= 500) {
      span.setAttribute(ATTR_ERROR_TYPE, String(statusCode));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }
  span.end();
}

/** Trace and span ids of a recording span, for a log line written outside its context; empty otherwise. */
export function logIds(span: Span | undefined): { trace_id?: string; span_id?: string } {
  if (span === undefined || !span.isRecording()) return {};
  const ctx = span.spanContext();
  return { trace_id: ctx.traceId, span_id: ctx.spanId };
}

/** The context whose active span is `span` (a parent passed explicitly, without relying on a context manager). */
export function contextOf(span: Span): Context {
  return trace.setSpan(ROOT_CONTEXT, span);
}

/**
 * Whether the propagators `OTEL_PROPAGATORS` names read no header beyond those their `fields()` list: W3C trace context
 * and baggage (the default) do not; B3 reads its multi-header form whichever form it writes, Jaeger its `uberctx-*` baggage.
 */
export function propagatorsReadOnlyTheirFields(value: string | undefined): boolean {
  const names = (value ?? '').split(',').map((name) => name.trim().toLowerCase());
  return names.every((name) => name === '' || name === 'tracecontext' || name === 'baggage' || name === 'none');
}

const FIELDS_ONLY = propagatorsReadOnlyTheirFields(process.env.OTEL_PROPAGATORS);

/**
 * Context carried by an incoming HTTP request's headers (`traceparent`), for spans created outside instrumentation. Under
 * propagators that read only their own fields, a request with none of those headers (most WebSocket upgrades and API
 * calls) carries none: the propagators, each of which would look for its headers in turn, are not called.
 */
export function contextFromHeaders(headers: Record<string, string | string[] | undefined>): Context {
  if (FIELDS_ONLY && !propagation.fields().some((field) => headers[field] !== undefined)) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, headers);
}

/** Context from a bare W3C `traceparent` string (a client frame's extra field). */
export function contextFromTraceparent(traceparent: string | undefined): Context {
  if (traceparent === undefined) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, { traceparent });
}

/**
 * The context a sampled span hands to the fan-out (the envelope's `trace`); undefined when the span is not sampled, and then
 * no `deliver` span is started for it. On one node the fan-out gets this object as is: no string is formatted or parsed.
 */
export function sampledContextOf(span: Span): SpanContext | undefined {
  return span.isRecording() ? span.spanContext() : undefined;
}

/** The context whose parent is a span known only by its SpanContext (an envelope's `trace`). */
export function contextOfSpanContext(spanContext: SpanContext): Context {
  return trace.setSpanContext(ROOT_CONTEXT, spanContext);
}

/** The W3C `traceparent` of a span context, as an envelope carries it between nodes (its `tracestate` is not carried). */
export function traceparentOfContext(spanContext: SpanContext): string {
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
}

/** The span context of an envelope's `traceparent` from another node (remote); undefined when it is not a valid one. */
export function spanContextFromTraceparent(traceparent: string): SpanContext | undefined {
  const parsed = parseTraceParent(traceparent);
  if (parsed === null || !trace.isSpanContextValid(parsed)) return undefined;
  return { ...parsed, isRemote: true };
}

/** The W3C `traceparent` of a span, for a webhook request's headers; undefined when the span is not sampled. */
export function traceparentOf(span: Span): string | undefined {
  if (!span.isRecording()) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(ROOT_CONTEXT, span), carrier);
  return carrier.traceparent;
}

export function startPublishSpan(
  channelType: ChannelType,
  channel: string,
  appId: string,
  event: string,
  bytes: number,
  parent: Context = context.active(),
): Span {
  const span = startSpan(`publish ${channelType}`, { kind: SpanKind.PRODUCER }, parent);
  if (span.isRecording()) {
    span.setAttribute(Attr.MessagingSystem, 'pusher');
    span.setAttribute(Attr.MessagingOperationType, 'send');
    span.setAttribute(Attr.MessagingOperationName, 'publish');
    span.setAttribute(Attr.MessagingDestination, channel);
    span.setAttribute(Attr.AppId, appId);
    span.setAttribute(Attr.EventName, event);
    span.setAttribute(Attr.MessagingMessageBodySize, bytes);
  }
  return span;
}

export function startDeliverSpan(channelType: ChannelType, channel: string, appId: string, parent: Context): Span {
  const span = startSpan(`deliver ${channelType}`, { kind: SpanKind.CONSUMER }, parent);
  if (span.isRecording()) {
    span.setAttribute(Attr.MessagingSystem, 'pusher');
    span.setAttribute(Attr.MessagingOperationType, 'process');
    span.setAttribute(Attr.MessagingOperationName, 'deliver');
    span.setAttribute(Attr.MessagingDestination, channel);
    span.setAttribute(Attr.AppId, appId);
  }
  return span;
}

/**
 * A client frame's span: the client's own trace when its frame carried `traceparent`, otherwise a new trace; linked to the
 * connection's `connect` span when that was sampled (never a child of it: one span per connection lifetime would never end).
 */
export function startProcessSpan(
  event: string,
  appId: string,
  sessionId: string,
  upgrade: SpanContext | undefined,
  traceparent: string | undefined,
): Span {
  const links: Link[] = upgrade === undefined ? [] : [{ context: upgrade }];
  const span = startSpan(
    `process ${event}`,
    { kind: SpanKind.SERVER, links },
    contextFromTraceparent(traceparent),
  );
  if (span.isRecording()) {
    span.setAttribute(Attr.MessagingSystem, 'pusher');
    span.setAttribute(Attr.AppId, appId);
    span.setAttribute(Attr.SessionId, sessionId);
  }
  return span;
}

/** Runs `fn` with `span` active, so log lines written inside carry its trace and span ids. */
export function withSpan<T>(span: Span, fn: () => T): T {
  return context.with(trace.setSpan(context.active(), span), fn);
}

/** The removal of a dead node's share of the cluster state (INTERNAL, a new trace): `reap node`. */
export function startReapSpan(deadNode: string): Span {
  const span = tracer.startSpan('reap node', { kind: SpanKind.INTERNAL }, ROOT_CONTEXT);
  if (span.isRecording()) span.setAttribute('beacon.dead_node', deadNode);
  return span;
}

/** The attribute of a refusal's span event: the same bounded `reason` as its metric label and log line. */
const REFUSAL_REASON = 'pusher.reason';

/**
 * Notes a refusal of the client's input on the active span (a frame's `process` span), if one records: an event named
 * after the refusal's log event, with its reason. Outside a span (a frame refused before decoding) it costs a lookup.
 */
export function addSpanEvent(event: string, reason: string): void {
  const span = trace.getActiveSpan();
  if (span !== undefined && span.isRecording()) span.addEvent(event, { [REFUSAL_REASON]: reason });
}
