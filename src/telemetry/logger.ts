/**
 * The one pino logger of the process (fastify uses the same instance). JSON lines with `service`, `env`, `node_id` on every
 * line, `trace_id`/`span_id` on every line written inside an active span, and secrets redacted.
 */
import { trace } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';

export type { Logger };

/** Log events of the catalog in DESIGN §4; every line carries exactly one of them in its `event` field. */
export type LogEvent =
  | 'connection_opened'
  | 'connection_closed'
  | 'connection_rejected'
  | 'subscribed'
  | 'subscription_failed'
  | 'unsubscribed'
  | 'signin'
  | 'auth_failed'
  | 'rate_limited'
  | 'slow_consumer'
  | 'message_rejected'
  | 'api_request'
  | 'webhook_failed'
  | 'adapter_up'
  | 'adapter_down'
  | 'server_started'
  | 'shutdown_started'
  | 'shutdown_completed';

export interface LoggerOptions {
  serviceName: string;
  env: string;
  nodeId: string;
  level: string;
  /** Where lines go; stdout by default. Tests pass a stream to capture lines. */
  destination?: pino.DestinationStream;
}

/** Paths whose values never reach a log line. */
export const REDACT_PATHS = [
  'auth',
  '*.auth',
  'secret',
  '*.secret',
  'signature',
  '*.signature',
  'auth_signature',
  '*.auth_signature',
  'req.headers.authorization',
  'req.query.auth_signature',
  'channel_data.auth',
  'shared_secret',
  '*.shared_secret',
];

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.serviceName, env: options.env, node_id: options.nodeId },
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Correlation with traces: every line written while a span is active carries its ids.
      mixin() {
        const span = trace.getActiveSpan();
        if (span === undefined) return {};
        const ctx = span.spanContext();
        return { trace_id: ctx.traceId, span_id: ctx.spanId };
      },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}
