/**
 * Request signing of the Pusher HTTP API: `auth_key`, `auth_timestamp` (±tolerance), `auth_version`, `body_md5` for
 * non-empty bodies, and `auth_signature` = HMAC-SHA256(secret, "METHOD\nPATH\nQUERY") compared in constant time; PATH as
 * sent, or percent-decoded (SDKs sign the plain path and their HTTP client may escape it: `auth0|abc` → `auth0%7Cabc`).
 */
import type { AppConfig } from '../config.js';
import { Errors, type HttpError } from '../protocol/errors.js';
import { apiSignString, bodyMd5, safeEqualHex, sign } from '../protocol/signatures.js';
import type { ApiAuthFailureReason } from '../telemetry/metrics.js';

export interface SignedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /**
   * The query as the routes read it (parsed, one value per name, names lower-cased: `signedQuery`): the signature is
   * checked over exactly what they act on. Parsed apart from theirs (the raw string up to a second `?`, by another parser),
   * a signed request could be sent again with parameters it never signed (a probe: `?&filter_by_prefix=…` appended).
   */
  query: Readonly<Record<string, string>>;
}

/** Outcome of a check; a signed request carries the `body_md5` its signature covers (undefined when it gave none). */
export type SigningResult =
  | { ok: true; bodyMd5: string | undefined }
  | { ok: false; reason: ApiAuthFailureReason; error: HttpError; message: string };

/** A refused check. */
export type SigningFailure = Extract<SigningResult, { ok: false }>;

/** An `auth_timestamp` as the SDKs write it: decimal digits (at most 15: a Number holds them exactly). */
const DIGITS = /^\d{1,15}$/;

/**
 * Checks what can be checked before the body is read: `auth_key`, `auth_timestamp` and `auth_signature` over the query —
 * which includes `body_md5`, so a request that passes has a signed digest of its body. Costs a few microseconds whatever the
 * body size; the body is then checked against the digest by `verifyBody`. `nowSeconds` is injectable for tests.
 */
export function verifyRequest(
  app: AppConfig,
  request: SignedRequest,
  toleranceSeconds: number,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): SigningResult {
  const query = request.query;
  const key = query.auth_key;
  if (key === undefined || !safeEqualHex(app.key, key)) {
    return { ok: false, reason: 'unknown_key', error: Errors.API_UNKNOWN_KEY, message: Errors.API_UNKNOWN_KEY.message };
  }
  // Whole seconds in decimal digits, as every SDK sends them (Number() also read hexadecimal, exponents and fractions).
  const written = query.auth_timestamp ?? '';
  const timestamp = DIGITS.test(written) ? Number(written) : Number.NaN;
  if (!Number.isFinite(timestamp) || Math.abs(nowSeconds - timestamp) > toleranceSeconds) {
    const error = Errors.API_EXPIRED;
    return { ok: false, reason: 'expired', error, message: error.format(toleranceSeconds) };
  }
  const signature = (query.auth_signature ?? '').toLowerCase();
  const signedOver = (path: string): boolean => safeEqualHex(sign(app.secret, apiSignString(request.method, path, query)), signature);
  // The path as sent first; then, only if that fails and the path has an escape, as decoded: the `pusher` SDK signs
  // `/users/auth0|abc/terminate_connections` but its HTTP client sends `auth0%7Cabc`. At most two HMACs a request.
  if (!signedOver(request.path)) {
    const decoded = decodedPath(request.path);
    if (decoded === undefined || !signedOver(decoded)) {
      return { ok: false, reason: 'bad_signature', error: Errors.API_BAD_SIGNATURE, message: Errors.API_BAD_SIGNATURE.message };
    }
  }
  return { ok: true, bodyMd5: query.body_md5?.toLowerCase() };
}

/**
 * The path with its percent-escapes decoded, when it has any and they are well-formed (what the routes see as their
 * parameters); undefined otherwise, so no second signature is computed for a path that decodes to itself. Not for a
 * path with an escaped `%` or `/`: the router matches the raw path and decodes each parameter alone, so decoding those
 * whole would let one signature fit another resource — `auth0%7Cabc` signed as sent would also fit `auth0%257Cabc` (the
 * user `auth0%7Cabc`), and `#server-to-user-bob/users` the channel `#server-to-user-bob%2Fusers`.
 */
const AMBIGUOUS_ESCAPE = /%(25|2f)/i;

function decodedPath(path: string): string | undefined {
  if (!path.includes('%') || AMBIGUOUS_ESCAPE.test(path)) return undefined;
  try {
    const decoded = decodeURIComponent(path);
    return decoded === path ? undefined : decoded;
  } catch {
    return undefined;
  }
}

/**
 * The query as signed and as the routes read it — checked before the signature, on the query as fastify parsed it for the
 * routes: the names lower-cased, as the signed string has them (`apiSignString`); undefined when a name is given twice, as
 * such or in another case (`info` and `INFO`). Read with its names as sent, a signed `filter_by_prefix` sent again as
 * `FILTER_BY_PREFIX` still passed the signature and listed every channel (a probe). A repeated name reaches a route as an
 * array (`info=a&info=b` is `['a', 'b']`) where it reads a string, and the signed string has one value per name, so the
 * other values would not be signed; which one is meant is the client's ambiguity to resolve (API_INVALID_REQUEST), not the
 * server's to guess. Repetition is the only way fastify's parser makes anything but a string.
 */
export function signedQuery(query: unknown): Record<string, string> | undefined {
  const lowered: Record<string, string> = Object.create(null) as Record<string, string>;
  if (typeof query !== 'object' || query === null) return lowered;
  for (const [name, value] of Object.entries(query)) {
    const lower = name.toLowerCase();
    if (typeof value !== 'string' || lower in lowered) return undefined;
    lowered[lower] = value;
  }
  return lowered;
}

/** Checks a non-empty raw body (the bytes as received, before any decoding) against the signed `body_md5`. */
export function verifyBody(body: Buffer, signedMd5: string | undefined): SigningResult {
  if (body.length > 0 && (signedMd5 === undefined || !safeEqualHex(bodyMd5(body), signedMd5))) {
    return { ok: false, reason: 'body_md5', error: Errors.API_BODY_MD5, message: Errors.API_BODY_MD5.message };
  }
  return { ok: true, bodyMd5: signedMd5 };
}
