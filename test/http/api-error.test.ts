/** How the HTTP API answers errors (src/http/api-error.ts): every answer is a registry error, fastify's own included. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyError } from 'fastify';
import { EngineUnavailableError } from '../../src/adapters/adapter.js';
import { ApiError, errorAnswer } from '../../src/http/api-error.js';
import { Errors } from '../../src/protocol/errors.js';

/** An error as fastify raises it (its code and message name the request's details). */
const fastifyError = (statusCode: number | undefined, code: string): FastifyError =>
  Object.assign(new Error(`${code}: /apps/secret-path?auth_key=x`), { statusCode, code }) as FastifyError;

test('an ApiError answers its registry status and filled message', () => {
  assert.deepEqual(errorAnswer(ApiError.of(Errors.API_BATCH_TOO_LARGE, 11, 10)), {
    error: Errors.API_BATCH_TOO_LARGE,
    status: 400,
    message: 'Batch of 11 events is over the limit of 10',
    internal: false,
  });
  assert.deepEqual(errorAnswer(ApiError.of(Errors.API_ENGINE_UNAVAILABLE)), {
    error: Errors.API_ENGINE_UNAVAILABLE,
    status: 503,
    message: Errors.API_ENGINE_UNAVAILABLE.message,
    internal: false,
  });
});

test('a query the cluster engine could not answer is API_ENGINE_UNAVAILABLE, not the server’s fault, and its cause is not sent', () => {
  const error = new EngineUnavailableError('cluster engine failed the query: WRONGTYPE Operation against a key', { cause: new Error('WRONGTYPE') });
  assert.deepEqual(errorAnswer(error), {
    error: Errors.API_ENGINE_UNAVAILABLE,
    status: 503,
    message: Errors.API_ENGINE_UNAVAILABLE.message,
    internal: false,
  });
});

test("fastify's own errors are mapped onto the registry, and nothing of their text is sent", () => {
  const cases: Array<[FastifyError, (typeof Errors)[keyof typeof Errors] & { status: number }]> = [
    [fastifyError(413, 'FST_ERR_CTP_BODY_TOO_LARGE'), Errors.API_BODY_TOO_LARGE],
    [fastifyError(415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE'), Errors.API_UNSUPPORTED_MEDIA_TYPE],
    [fastifyError(400, 'FST_ERR_CTP_INVALID_CONTENT_LENGTH'), Errors.API_INVALID_REQUEST],
    [fastifyError(500, 'FST_ERR_SOMETHING'), Errors.API_INTERNAL],
    [fastifyError(undefined, 'TypeError'), Errors.API_INTERNAL],
  ];
  for (const [error, expected] of cases) {
    const answer = errorAnswer(error);
    assert.equal(answer.error, expected, error.code);
    assert.equal(answer.status, expected.status, error.code);
    assert.equal(answer.message, expected.message, error.code);
    assert.equal(answer.internal, expected === Errors.API_INTERNAL, error.code);
  }
});
