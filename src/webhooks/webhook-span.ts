/**
 * The CLIENT span of one webhook request (docs/telemetry.md: "webhook delivery: client span; `traceparent` is sent to the
 * receiver"). Its name is `webhook <event name>` when a request carries one kind of event and `webhook batch` otherwise,
 * so it stays bounded. Each attempt is its own span (HTTP semantic conventions: a resend is a new request), and every one
 * starts a new trace: a batch mixes events from many clients, so no single client's trace is its parent.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from '@opentelemetry/semantic-conventions';
import { Attr, endWithError } from '../telemetry/tracing.js';
import type { WebhookEvent, WebhookEventName } from './webhook-event.js';

const tracer = trace.getTracer('beacon');

/** `pusher.webhook.events`: how many events the request carries. */
const ATTR_WEBHOOK_EVENTS = 'pusher.webhook.events';

/** The bounded span name of a batch. */
export function webhookSpanName(events: readonly WebhookEvent[]): string {
  const first: WebhookEventName | undefined = events[0]?.name;
  for (const e of events) if (e.name !== first) return 'webhook batch';
  return `webhook ${first ?? 'batch'}`;
}

/** The receiver's address, parsed once per app. */
export interface WebhookTarget {
  appId: string;
  host: string;
  port: number;
}

export function startWebhookSpan(name: string, target: WebhookTarget, events: number, attempt: number): Span {
  const span = tracer.startSpan(name, { kind: SpanKind.CLIENT }, ROOT_CONTEXT);
  if (span.isRecording()) {
    span.setAttribute(ATTR_HTTP_REQUEST_METHOD, 'POST');
    span.setAttribute(ATTR_SERVER_ADDRESS, target.host);
    span.setAttribute(ATTR_SERVER_PORT, target.port);
    span.setAttribute(Attr.AppId, target.appId);
    span.setAttribute(ATTR_WEBHOOK_EVENTS, events);
    if (attempt > 1) span.setAttribute(ATTR_HTTP_REQUEST_RESEND_COUNT, attempt - 1);
  }
  return span;
}

/** Ends the span with the receiver's answer: a non-2xx status marks it failed. */
export function endWebhookSpan(span: Span, status: number): void {
  span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
  if (status < 200 || status > 299) span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${status}` });
  span.end();
}

/** Ends the span of a request that got no answer (refused, reset, timed out). */
export function failWebhookSpan(span: Span, err: unknown): void {
  endWithError(span, err);
}
