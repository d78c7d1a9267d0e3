import { ApiError, badRequest } from './errors.js';
import { exceedsJsonDepth } from './json-depth.js';
import { tooDeep } from './parse.js';

/** Request bytes -> a JSON object, with the size, emptiness, depth and syntax errors every endpoint shares. */
export function readJsonObjectBody(
  raw: Buffer,
  bodyLimit: number,
  expected: string,
): Record<string, unknown> {
  if (raw.length > bodyLimit) {
    throw new ApiError(
      413,
      `Request body is ${raw.length} bytes; the limit is ${bodyLimit}.`,
      'invalid_request_error',
      'request_too_large',
    );
  }
  if (raw.length === 0) throw badRequest(`Request body is empty; expected ${expected}.`);
  if (exceedsJsonDepth(raw)) throw tooDeep();
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw badRequest(`Request body is not valid JSON: ${(err as Error).message}`, null, 'invalid_json');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('Request body must be a JSON object.', null, 'invalid_type');
  return body as Record<string, unknown>;
}
