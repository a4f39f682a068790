/** The webhook list of an app's configuration: its schema (APP_WEBHOOKS, APPS_FILE `webhooks`) and its typed form. */
import { z } from 'zod';
import { SHORTHAND_WEBHOOK_EVENT_NAMES, WEBHOOK_EVENT_NAMES, type WebhookEventName } from './webhook-event.js';

/**
 * One webhook of an app (docs/webhooks.md, "Several webhooks"): where it goes, which event types, which channels, which
 * extra headers. `APP_WEBHOOK_URL` / `webhookUrl` is the shorthand for one webhook with every event type but
 * `subscription_count` (webhook-event.ts says why).
 */
export interface WebhookConfig {
  url: string;
  eventTypes: readonly WebhookEventName[];
  /** Only events on channels whose name starts with this; undefined: any. */
  channelNameStartsWith: string | undefined;
  /** Only events on channels whose name ends with this; undefined: any. */
  channelNameEndsWith: string | undefined;
  /** Sent with every request; the signed headers (Content-Type, X-Pusher-Key, X-Pusher-Signature) are never replaced. */
  headers: Readonly<Record<string, string>>;
}

/** Webhooks one app may have: each has its own queue, and its index is a metric label. */
export const MAX_WEBHOOKS_PER_APP = 10;
/**
 * Headers a webhook's `headers` may not set: the signed ones, and those the HTTP client owns — the message's framing and
 * the connection's (a `Transfer-Encoding` beside the client's `Content-Length` made every request one the receiver's
 * parser refuses).
 */
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-length',
  'host',
  'x-pusher-key',
  'x-pusher-signature',
  'traceparent',
  'tracestate',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);

/** An `http://` or `https://` URL: the only ones Node's fetch sends to (a webhook's, `LOKI_URL`). */
export const httpUrl = z.url().refine((u) => /^https?:\/\//i.test(u), 'an http:// or https:// URL');

/**
 * A webhook's URL: `http://` or `https://`, the only ones it can be sent to (in every form a URL is given: `APP_WEBHOOK_URL`,
 * an APPS_FILE app's `webhookUrl`, a listed webhook's `url`). Before, the shorthands took any URL, `ftp://` included, and
 * every event of it was retried until the deadline, then given up.
 */
export const webhookUrl = httpUrl;

/** What Node's HTTP client sends in a header value: tab, visible ASCII and Latin-1 (anything else fails every request). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** A header value Node's HTTP clients send (a webhook's `headers`, `LOKI_TENANT_ID`). */
export const headerValue = z.string().regex(HEADER_VALUE, 'one line of visible ASCII or Latin-1 characters');

const webhookSchema = z
  .object({
    url: webhookUrl,
    eventTypes: z.array(z.enum(WEBHOOK_EVENT_NAMES)).min(1),
    filter: z
      .object({
        channelNameStartsWith: z.string().min(1).optional(),
        channelNameEndsWith: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    headers: z
      .record(
        z
          .string()
          .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'an HTTP header name')
          .refine((name) => !RESERVED_HEADERS.has(name.toLowerCase()), 'a header Beacon sets itself'),
        headerValue,
      )
      .optional(),
  })
  .strict();
/** An app's webhook list as written in APP_WEBHOOKS or an APPS_FILE app's `webhooks`. */
export const webhookListSchema = z.array(webhookSchema).max(MAX_WEBHOOKS_PER_APP);

/** One validated entry, in its typed form (event types deduplicated, the filter flattened). */
export function toWebhookConfig(w: z.infer<typeof webhookSchema>): WebhookConfig {
  return {
    url: w.url,
    eventTypes: [...new Set(w.eventTypes)],
    channelNameStartsWith: w.filter?.channelNameStartsWith,
    channelNameEndsWith: w.filter?.channelNameEndsWith,
    headers: w.headers ?? {},
  };
}

/**
 * The `APP_WEBHOOK_URL` / `webhookUrl` shorthand: one webhook for every event type but `subscription_count` (which only a
 * webhook that lists it gets: SHORTHAND_WEBHOOK_EVENT_NAMES), no filter, no extra header.
 */
export function allEventsWebhook(url: string): WebhookConfig {
  return {
    url,
    eventTypes: SHORTHAND_WEBHOOK_EVENT_NAMES,
    channelNameStartsWith: undefined,
    channelNameEndsWith: undefined,
    headers: {},
  };
}
