/**
 * HMAC-SHA256 signatures of the Pusher protocol (channel auth, user signin, HTTP API requests, webhooks). Pure.
 * Every comparison is constant-time.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Hex HMAC-SHA256 of `message` under `secret`. */
export function sign(secret: string, message: string): string {
  return createHmac('sha256', secret).update(message).digest('hex');
}

/** Constant-time comparison of two hex strings (different lengths compare unequal without leaking where). */
export function safeEqualHex(expected: string, actual: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(actual, 'utf8');
  if (a.length !== b.length) {
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}

/** The string signed for a channel subscription: `socket_id:channel[:channel_data]`. */
export function channelAuthString(socketId: string, channel: string, channelData?: string): string {
  return channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
}

/** The string signed for a user signin: `socket_id::user::user_data`. */
export function userAuthString(socketId: string, userData: string): string {
  return `${socketId}::user::${userData}`;
}

/**
 * Checks an `auth` field of the form `<key>:<hex signature>` against the app's key and secret.
 * Returns false for any other shape.
 */
export function verifyAuth(auth: unknown, key: string, secret: string, signed: string): boolean {
  if (typeof auth !== 'string') return false;
  const colon = auth.indexOf(':');
  if (colon < 0) return false;
  const givenKey = auth.slice(0, colon);
  // Hex in either case, as the HTTP API's `auth_signature` (http/signing.ts): the same HMAC, however the auth endpoint's
  // language writes it (.NET's `Convert.ToHexString` writes upper case).
  const signature = auth.slice(colon + 1).toLowerCase();
  const keyOk = safeEqualHex(key, givenKey);
  const sigOk = safeEqualHex(sign(secret, signed), signature);
  return keyOk && sigOk;
}

/** Hex MD5 of a request body (the `body_md5` query parameter). */
export function bodyMd5(body: string | Buffer): string {
  return createHash('md5').update(body).digest('hex');
}

/**
 * The string signed for an HTTP API request: `METHOD\nPATH\nQUERY`, where QUERY is every parameter but `auth_signature`,
 * keys lower-cased and sorted, joined `k=v&…` unescaped.
 */
export function apiSignString(method: string, path: string, query: Record<string, string>): string {
  const params = Object.keys(query)
    .filter((k) => k !== 'auth_signature')
    .map((k) => [k.toLowerCase(), query[k]] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  return `${method.toUpperCase()}\n${path}\n${params}`;
}

/** Hex signature of a webhook body (`X-Pusher-Signature`). */
export function webhookSignature(secret: string, body: string): string {
  return sign(secret, body);
}
