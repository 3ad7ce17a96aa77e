// Every error answer of the HTTP API is `{ error, code }`: `error` says in words what was wrong, and
// `code` is a stable machine code documented in docs/errors.md ("HTTP API errors"). The code decides
// the status, so a route names only the code; fastify's own errors (a body too large, not JSON, not
// fitting the schema, a malformed URL or request) are mapped here, in the one error handler, the
// not-found handler and the two framework hooks, so that no answer leaves without a code.
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../log.js';

/** Each code with its status. docs/errors.md documents every one; a test checks both lists agree. */
export const HTTP_ERRORS = {
  GW_HTTP_BAD_REQUEST: 400,
  GW_HTTP_BAD_URL: 400,
  GW_HTTP_BAD_JSON: 400,
  GW_HTTP_INVALID_REQUEST: 400,
  GW_HTTP_BAD_RANGE: 400,
  GW_HTTP_UNAUTHORIZED: 401,
  GW_HTTP_FORBIDDEN: 403,
  GW_HTTP_NO_ROUTE: 404,
  GW_HTTP_NOT_FOUND: 404,
  GW_HTTP_NO_PLATFORM: 404,
  GW_HTTP_NO_RISK: 404,
  GW_HTTP_NO_REPORT: 404,
  GW_HTTP_REQUEST_TIMEOUT: 408,
  GW_HTTP_CONFLICT: 409,
  GW_HTTP_RELOAD_BUSY: 409,
  GW_HTTP_BODY_TOO_LARGE: 413,
  GW_HTTP_UNSUPPORTED_MEDIA_TYPE: 415,
  GW_HTTP_RELOAD_REFUSED: 422,
  GW_HTTP_TOO_MANY_WRONG_TOKENS: 429,
  GW_HTTP_HEADERS_TOO_LARGE: 431,
  GW_HTTP_INTERNAL: 500,
  GW_HTTP_NOT_READY: 503,
  GW_HTTP_CHECK_BUSY: 503,
  GW_HTTP_STOPPING: 503,
} as const;
export type HttpErrorCode = keyof typeof HTTP_ERRORS;

/** The answer's body for an error: what was wrong, and its code. */
export function errorBody(code: HttpErrorCode, message: string): { error: string; code: HttpErrorCode } {
  return { error: message, code };
}

/** Answers `reply` with the code's status and `{ error, code }`. */
export function sendError(reply: FastifyReply, code: HttpErrorCode, message: string): FastifyReply {
  return reply.code(HTTP_ERRORS[code]).send(errorBody(code, message));
}

/** The JSON Schema of an error answer, for the routes' OpenAPI description (and their serialisers). */
export const errorSchema = {
  type: 'object',
  properties: {
    error: { type: 'string', description: 'What was wrong, in words' },
    code: { type: 'string', enum: Object.keys(HTTP_ERRORS), description: 'A stable code, documented in docs/errors.md' },
  },
  required: ['error', 'code'],
} as const;

/** Fastify's codes for the request errors it raises itself, with ours. */
const FASTIFY_CODES: Record<string, HttpErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'GW_HTTP_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'GW_HTTP_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'GW_HTTP_BAD_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'GW_HTTP_BAD_JSON',
  FST_ERR_VALIDATION: 'GW_HTTP_INVALID_REQUEST',
  FST_ERR_BAD_URL: 'GW_HTTP_BAD_URL',
  FST_ERR_MAX_PARAM_LENGTH: 'GW_HTTP_BAD_URL',
};

/** Our code for a 4xx fastify raised: by its code, else by its status. */
function clientErrorCode(err: { code?: string }, status: number): HttpErrorCode {
  const mapped = err.code ? FASTIFY_CODES[err.code] : undefined;
  if (mapped) return mapped;
  if (status === 413) return 'GW_HTTP_BODY_TOO_LARGE';
  if (status === 415) return 'GW_HTTP_UNSUPPORTED_MEDIA_TYPE';
  return 'GW_HTTP_BAD_REQUEST';
}

/**
 * The error and not-found handlers of `app` (set before any plugin registers its routes, which take
 * the handler in force when they are added). A 4xx says what was wrong with the request; a 5xx says
 * only that it failed, and the log has the details.
 */
export function handleErrors(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) {
      log.error({ err, method: request.method, url: request.url.slice(0, 200) }, 'HTTP API request failed');
      return sendError(reply, 'GW_HTTP_INTERNAL', 'internal error; the gateway log has the details');
    }
    // A 4xx keeps its status even where our code's documented one differs (an unusual 4xx is GW_HTTP_BAD_REQUEST).
    return reply.code(status).send(errorBody(clientErrorCode(err, status), err.message));
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 'GW_HTTP_NO_ROUTE', `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`),
  );
}

/**
 * Fastify's `frameworkErrors` option: a URL that does not decode, or a path parameter over the
 * router's length, answered like any other error instead of fastify's own body.
 */
export function frameworkErrors(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  void reply.code(400).send(errorBody(clientErrorCode(err, 400), err.message));
}

/**
 * Fastify's `clientErrorHandler` option: what Node's HTTP server could not parse into a request (a
 * request that did not arrive within request_timeout, headers too large, a malformed request line)
 * is answered on the socket itself, which is then closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  // A connection reset by its client has nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'GW_HTTP_REQUEST_TIMEOUT' as const, 'the request did not arrive within http.request_timeout']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'GW_HTTP_HEADERS_TOO_LARGE' as const, 'the request headers are too large']
        : [400, 'Bad Request', 'GW_HTTP_BAD_REQUEST' as const, 'the request is not valid HTTP'];
  const body = JSON.stringify(errorBody(code, message));
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
    );
  socket.destroy(err);
}
