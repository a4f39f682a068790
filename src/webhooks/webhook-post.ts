/**
 * One webhook request, with node:http / node:https rather than `fetch`. Node's `fetch` (undici) detaches an ArrayBuffer
 * in its first request (its body and response streams are web streams), and the first detach in a thread invalidates
 * V8's ArrayBufferDetaching protector for good: every optimised function that reads a typed array (Buffer, ws framing,
 * the socket writes of every delivery) is thrown away and rebuilt with detach checks, 2-5 % more CPU per delivery and
 * per connect from then on (bench/README.md, "A detached ArrayBuffer"). The sender reads only the status, so this is
 * all it needs. Connections are reused through Node's global agents (keep-alive since Node 19).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface WebhookRequest {
  method: 'POST';
  headers: Readonly<Record<string, string>>;
  body: string;
  /**
   * Aborts the request (timeout, shutdown); the promise rejects with the signal's reason, as `fetch` does (a timeout's
   * `TimeoutError` reads "The operation was aborted due to timeout"), not with node:http's own AbortError, which reads
   * "The operation was aborted" whatever the reason and so made a timeout look like a cut at shutdown in `webhook_failed`.
   */
  signal: AbortSignal;
  /**
   * How long the answer's body may take to arrive once its head did (the request's own bound ends there): past it, or past
   * ANSWER_BODY_MAX_BYTES, the connection is closed instead of going back to the agent.
   */
  answerBodyMs: number;
}

/** The most of an answer's body drained for the connection's reuse; a longer one closes the connection instead. */
export const ANSWER_BODY_MAX_BYTES = 64 * 1024;

/** The answer: only the status matters (a 2xx is a delivery; redirects are not followed, a 3xx is a failure). */
export interface WebhookAnswer {
  status: number;
  ok: boolean;
  /** How long the receiver asked to be left alone (`Retry-After` of a 429 or a 503), in ms; undefined when it did not. */
  retryAfterMs?: number | undefined;
}

/**
 * A `Retry-After` value (RFC 9110 §10.2.3: seconds, or an HTTP date) as milliseconds from `nowMs`; undefined when absent
 * or unreadable. A date in the past is 0.
 */
export function retryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  // Any number of digits: a receiver asking for longer than anyone waits is still asking to wait (the caller caps it).
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, Number.MAX_SAFE_INTEGER);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

export type WebhookPost = (url: string, request: WebhookRequest) => Promise<WebhookAnswer>;

/** POSTs `request.body` to `url` (http: or https:) and resolves with the status once the answer's head arrives. */
export const postWebhook: WebhookPost = (url, { method, headers, body, signal, answerBodyMs }) =>
  new Promise<WebhookAnswer>((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const payload = Buffer.from(body);
    const req = send(target, { method, headers: { ...headers, 'content-length': String(payload.length) }, signal }, (res) => {
      const status = res.statusCode ?? 0;
      // The body is never read: drained, so the connection goes back to the agent for the next request; but only a body
      // that ends in time and is short. A receiver that sent its head and never finished the body held the socket (and a
      // descriptor) for good, the request's time bound over once the head came: one per request, until none was left.
      let drained = 0;
      const cut = (): void => {
        clearTimeout(timer);
        req.destroy();
      };
      const timer = setTimeout(cut, answerBodyMs).unref();
      res.on('data', (chunk: Buffer) => {
        drained += chunk.length;
        if (drained > ANSWER_BODY_MAX_BYTES) cut();
      });
      res.on('close', () => clearTimeout(timer));
      res.on('error', () => {});
      const header = res.headers['retry-after'];
      const asked = status === 429 || status === 503 ? retryAfterMs(header, Date.now()) : undefined;
      resolve(asked === undefined ? { status, ok: status >= 200 && status < 300 } : { status, ok: false, retryAfterMs: asked });
    });
    req.once('error', (err) => reject(signal.aborted && signal.reason instanceof Error ? signal.reason : err));
    req.end(payload);
  });
