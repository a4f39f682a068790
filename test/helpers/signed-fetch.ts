/**
 * Raw HTTP API requests signed with Beacon's own signing functions (src/protocol/signatures.ts), each part of the signature
 * overridable so tests can build exactly the request a misbehaving backend would send. The SDK covers the happy paths.
 */
import { apiSignString, bodyMd5, sign } from '../../src/protocol/signatures.js';
import { APP, type TestServer } from './server.js';

export interface SigningOverrides {
  key?: string;
  secret?: string;
  /** Unix seconds; default now. */
  timestamp?: number;
  /** Replaces the computed body_md5 (for bodies) with this value. */
  bodyMd5?: string;
  /** Replaces the computed signature. */
  signature?: string;
}

export interface ApiAnswer {
  status: number;
  headers: Headers;
  body: unknown;
}

/** The query string (without `?`) of `method path` with `params`, signed for `body` (its `body_md5`) and the overrides. */
export function signedQuery(
  method: string,
  path: string,
  options: { body?: string; params?: Record<string, string>; sign?: SigningOverrides } = {},
): string {
  const o = options.sign ?? {};
  const query: Record<string, string> = {
    ...options.params,
    auth_key: o.key ?? APP.key,
    auth_timestamp: String(o.timestamp ?? Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
  };
  if (options.body !== undefined && options.body.length > 0) query.body_md5 = o.bodyMd5 ?? bodyMd5(options.body);
  query.auth_signature = o.signature ?? sign(o.secret ?? APP.secret, apiSignString(method, path, query));
  return new URLSearchParams(query).toString();
}

/** Sends `method path` (path under the server, e.g. `/apps/app-id/events`) with `body` and `params`, signed. */
export async function signedFetch(
  server: Pick<TestServer, 'port'>,
  method: 'GET' | 'POST',
  path: string,
  options: { body?: string; params?: Record<string, string>; sign?: SigningOverrides; headers?: Record<string, string> } = {},
): Promise<ApiAnswer> {
  const url = `http://127.0.0.1:${server.port}${path}?${signedQuery(method, path, options)}`;
  const res = await fetch(url, {
    method,
    headers: { ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
    body: options.body,
    signal: AbortSignal.timeout(3000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: kept as text for the assertion message
  }
  return { status: res.status, headers: res.headers, body };
}

/** The HTTP status of a failed SDK call (the SDK rejects with a RequestError carrying `status` and `body`). */
export async function sdkFailure(call: Promise<unknown>): Promise<{ status: number; body: unknown }> {
  try {
    await call;
  } catch (err) {
    const e = err as { status?: number; body?: string };
    if (typeof e.status !== 'number') throw err;
    let body: unknown = e.body;
    try {
      body = JSON.parse(e.body ?? '');
    } catch {
      // keep the text
    }
    return { status: e.status, body };
  }
  throw new Error('the SDK call succeeded but was expected to fail');
}
