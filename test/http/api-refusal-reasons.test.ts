/**
 * The reasons of `websocket_api_refusals_total` (src/http/api-refusals.ts): every error of the HTTP API's registry is either
 * counted there, under its name lower-cased without `API_`, or named here with the metric that counts it instead; the
 * metric's reasons (API_REFUSAL_REASONS, all exported from start) are exactly those, and docs/telemetry.md lists each.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { API_REFUSALS } from '../../src/http/api-refusals.js';
import { Errors, type HttpError } from '../../src/protocol/errors.js';
import { API_REFUSAL_REASONS } from '../../src/telemetry/metrics.js';
import { CONTRACT_PATH } from '../helpers/exposition.js';

/** The API's errors that are not refusals counted here, and what counts them. */
const COUNTED_ELSEWHERE: Record<string, string> = {
  API_UNKNOWN_APP: 'websocket_api_auth_failures_total',
  API_UNKNOWN_KEY: 'websocket_api_auth_failures_total',
  API_EXPIRED: 'websocket_api_auth_failures_total',
  API_BAD_SIGNATURE: 'websocket_api_auth_failures_total',
  API_BODY_MD5: 'websocket_api_auth_failures_total',
  API_RATE_LIMITED: 'websocket_rate_limit_triggered_total',
  API_NOT_FOUND: 'http_server_request_duration_seconds (unmatched)',
  API_HEADERS_TOO_LARGE: 'websocket_http_malformed_requests_total',
  API_REQUEST_TIMEOUT: 'websocket_http_malformed_requests_total',
  API_PARAM_TOO_LONG: 'websocket_http_malformed_requests_total',
  API_INVALID_URL: 'websocket_http_malformed_requests_total',
  API_HOST_REQUIRED: 'websocket_http_malformed_requests_total',
  API_METHOD_NOT_ALLOWED: 'websocket_http_malformed_requests_total',
  API_EXPECTATION_FAILED: 'websocket_http_malformed_requests_total',
  API_TOO_MANY_PIPELINED: 'websocket_http_malformed_requests_total',
  API_INTERNAL: 'http_server_request_duration_seconds (500; the server fault, logged at error level)',
};

const apiErrors = (): HttpError[] =>
  Object.values(Errors).filter((e): e is HttpError => e.kind === 'http' && e.name.startsWith('API_'));

test('every error of the HTTP API is counted as a refusal or named with the metric that counts it instead', () => {
  const unclassified = apiErrors()
    .filter((e) => !API_REFUSALS.has(e) && COUNTED_ELSEWHERE[e.name] === undefined)
    .map((e) => e.name);
  assert.deepEqual(unclassified, [], 'add each to src/http/api-refusals.ts or to COUNTED_ELSEWHERE');
  const both = apiErrors()
    .filter((e) => API_REFUSALS.has(e) && COUNTED_ELSEWHERE[e.name] !== undefined)
    .map((e) => e.name);
  assert.deepEqual(both, [], 'counted twice');
  // A name listed here that the registry no longer has is a stale entry.
  const names = new Set(apiErrors().map((e) => e.name));
  assert.deepEqual(Object.keys(COUNTED_ELSEWHERE).filter((n) => !names.has(n)), []);
});

test('a reason is the registry name lower-cased without API_, and the metric exports exactly those', () => {
  for (const [error, reason] of API_REFUSALS) assert.equal(reason, error.name.slice('API_'.length).toLowerCase(), error.name);
  const reasons = [...API_REFUSALS.values()];
  assert.equal(new Set(reasons).size, reasons.length, 'one registry error per reason');
  assert.deepEqual([...reasons].sort(), [...API_REFUSAL_REASONS].sort());
});

test('docs/telemetry.md lists every reason', () => {
  const row = readFileSync(CONTRACT_PATH, 'utf8')
    .split('\n')
    .find((line) => line.startsWith('| `websocket_api_refusals_total` |'));
  assert.ok(row, 'the metric has its row');
  for (const reason of API_REFUSAL_REASONS) assert.ok(row.includes(`\`${reason}\``), reason);
});
