/**
 * How the HTTP API answers an error — thrown by a route (`ApiError`) or decided by a hook (`sendError`): always a registry
 * error (protocol/errors.ts), its status and `{ "error": message }`. Errors fastify raises itself (body too large,
 * unsupported content type, a malformed request) are mapped onto the registry too, so nothing fastify writes — its codes,
 * the path — reaches the caller, and every answer is listed in docs/errors.md. So is a query the cluster engine could not
 * answer (`EngineUnavailableError`, thrown by the adapter): 503 `API_ENGINE_UNAVAILABLE`, as while the engine is down.
 */
import type { FastifyError, FastifyReply } from 'fastify';
import { EngineUnavailableError } from '../adapters/adapter.js';
import { Errors, type HttpError } from '../protocol/errors.js';

/**
 * An API error thrown by a route: a registry error (`ApiError.of`) with its status and message. The constructor is private
 * so that no route answers a status or text of its own.
 */
export class ApiError extends Error {
  /** The registry error's status. */
  readonly statusCode: number;

  private constructor(
    /** The registry error answered: its status, and the `reason` it is counted under (api-refusals.ts). */
    readonly registryError: HttpError,
    message: string,
  ) {
    super(message);
    this.statusCode = registryError.status;
  }

  /** The registry's `error`, its message filled with `args`. */
  static of(error: HttpError, ...args: ReadonlyArray<string | number>): ApiError {
    return new ApiError(error, error.format(...args));
  }

  /** The registry's `error` with its message already filled in (a failed schema check of a body: publish-request.ts). */
  static filled(error: HttpError, message: string): ApiError {
    return new ApiError(error, message);
  }
}

/** A registry error, its status and its message, filled in. */
export interface ErrorAnswer {
  error: HttpError;
  status: number;
  message: string;
  /** True for API_INTERNAL: the server's own failure, logged as an error. */
  internal: boolean;
}

/** The answer to an error thrown while serving a request; anything not the client's fault is `API_INTERNAL`. */
export function errorAnswer(error: FastifyError | ApiError | EngineUnavailableError): ErrorAnswer {
  if (error instanceof ApiError) {
    return { error: error.registryError, status: error.statusCode, message: error.message, internal: false };
  }
  // The engine's failure, not the server's: the caller retries, as while the engine is down (the adapter logs the cause,
  // `adapter_request_failed` or `adapter_down`; it is never in the answer).
  if (error instanceof EngineUnavailableError) {
    const unavailable = Errors.API_ENGINE_UNAVAILABLE;
    return { error: unavailable, status: unavailable.status, message: unavailable.message, internal: false };
  }
  const status = error.statusCode ?? 500;
  const mapped =
    status === 413
      ? Errors.API_BODY_TOO_LARGE
      : status === 415
        ? Errors.API_UNSUPPORTED_MEDIA_TYPE
        : status >= 400 && status < 500
          ? Errors.API_INVALID_REQUEST
          : Errors.API_INTERNAL;
  return { error: mapped, status: mapped.status, message: mapped.message, internal: mapped === Errors.API_INTERNAL };
}

/** Answers `error` (message filled with `args`): the one way the API sends an error it decided on before a route ran. */
export function sendError(reply: FastifyReply, error: HttpError, ...args: ReadonlyArray<string | number>): FastifyReply {
  return sendFilled(reply, error, error.format(...args));
}

/**
 * Answers `error` with `message`, its text already filled in (a signing failure carries one, for its log line too).
 * Not `sendError(reply, error, message)`: that fills the message into itself, `%s` and all.
 */
export function sendFilled(reply: FastifyReply, error: HttpError, message: string): FastifyReply {
  return reply.code(error.status).send({ error: message });
}
