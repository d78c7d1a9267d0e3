// Shared helpers for translating provider error answers into OpenAI-style ApiErrors.
//
// Status policy (all translators): 429 stays 429; other 4xx keep their status (the request or
// the provider setup is at fault, failover does not help); upstream 503 and Anthropic's 529
// (overloaded) become 503; 504/408 become 504 (timeout_error); every other 5xx (and anything
// odd) becomes 502 with type upstream_error. The provider's own error type goes into `code`
// when the provider gave no code. Every field is redacted (src/core/redact.ts) before it is
// clipped, so a clip can never leave half a key behind; ApiError redacts again as it is built.
import type { CompiledModel } from '../../config/compiled.js';
import { ApiError, type ErrorType } from '../../errors.js';
import { redact } from '../../redact.js';

const MAX_MESSAGE = 500;
const MAX_FIELD = 200;
/** How much of a non-JSON body is looked at for an excerpt. */
const EXCERPT_WINDOW = 4000;

/** Parse a body as JSON, or undefined when it is not JSON. */
export function tryParseJson(body: Buffer | string): unknown {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A short, single-line excerpt of a non-JSON body (HTML error pages from proxies and the like). */
export function bodyExcerpt(body: Buffer | string): string {
  let text =
    typeof body === 'string'
      ? body.slice(0, EXCERPT_WINDOW)
      : body.toString('utf8', 0, Math.min(body.length, EXCERPT_WINDOW));
  text = redact(text)
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > 200 ? text.slice(0, 200) + '…' : text;
}

function clip(text: string, max = MAX_MESSAGE): string {
  return text.length > max ? text.slice(0, max) + '…' : text;
}

/** A provider's type/code/param: redacted, then clipped. */
function field(value: string | null | undefined): string | null {
  return value === null || value === undefined ? null : clip(redact(value), MAX_FIELD);
}

/** The status the client sees for an upstream status (policy above). */
export function clientStatusFor(upstreamStatus: number): number {
  if (upstreamStatus === 429) return 429;
  if (upstreamStatus === 408 || upstreamStatus === 504) return 504;
  if (upstreamStatus === 503 || upstreamStatus === 529) return 503;
  if (upstreamStatus >= 400 && upstreamStatus < 500) return upstreamStatus;
  return 502;
}

function defaultType(clientStatus: number): ErrorType {
  switch (clientStatus) {
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 429:
      return 'rate_limit_error';
    case 504:
      return 'timeout_error';
    default:
      return clientStatus >= 500 ? 'upstream_error' : 'invalid_request_error';
  }
}

export interface UpstreamErrorInfo {
  /** Provider message (scrubbed here). */
  message: string | undefined;
  /** Provider error type, e.g. rate_limit_error, overloaded_error, server_error. */
  providerType?: string | null;
  providerCode?: string | null;
  param?: string | null;
  /** The error arrived as an event inside a stream that had started (no HTTP status of its own). */
  midStream?: boolean;
}

/**
 * Build the client-facing error for an upstream failure. 4xx keep the provider's type (requests
 * are the client's business); 5xx say which provider failed.
 */
export function upstreamError(
  model: CompiledModel,
  upstreamStatus: number,
  info: UpstreamErrorInfo,
): ApiError {
  const status = clientStatusFor(upstreamStatus);
  const raw =
    info.message !== undefined && info.message.trim() !== '' ? info.message : `HTTP ${upstreamStatus}`;
  const providerMessage = clip(redact(raw));
  const providerType = field(info.providerType);
  const providerCode = field(info.providerCode);
  const provider = model.provider.name;
  if (status >= 500) {
    return new ApiError(
      status,
      info.midStream
        ? `Provider '${provider}' failed mid-stream (${providerType ?? providerCode ?? 'error'}): ${providerMessage}`
        : `Provider '${provider}' failed with HTTP ${upstreamStatus}: ${providerMessage}`,
      status === 504 ? 'timeout_error' : 'upstream_error',
      providerCode ?? providerType ?? `upstream_${upstreamStatus}`,
      null,
    );
  }
  // 4xx: our normalised type; the provider's own type or code travels in `code`.
  let type: string = defaultType(status);
  if (status === 429 && providerType === 'insufficient_quota') type = 'insufficient_quota';
  const code = providerCode ?? (providerType !== null && providerType !== type ? providerType : null);
  let message = providerMessage;
  if (status === 401) {
    message = `Provider '${provider}' rejected the credentials configured in TierFlow (HTTP 401): ${providerMessage}`;
  } else if (status === 403) {
    message = `Provider '${provider}' refused the request (HTTP 403): ${providerMessage}`;
  } else if (status === 429) {
    message = `Provider '${provider}' is rate limiting requests: ${providerMessage}`;
  }
  return new ApiError(status, message, type, code, field(info.param));
}

/** A JSON object (not an array, not null): what every provider's answers and events are. */
export const isJsonObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A 502 for an answer that is not in the provider's documented wire format, whatever its HTTP
 * status said; the next candidate may serve. `what` completes "Provider 'name' ...".
 */
export function unreadableAnswerError(model: CompiledModel, what: string): ApiError {
  return new ApiError(
    502,
    `Provider '${model.provider.name}' ${what}`,
    'upstream_error',
    'invalid_upstream_response',
  );
}

/** The JSON object of a successful answer, or a 502 quoting (redacted) what came instead. */
export function answerObject(model: CompiledModel, body: Buffer): Record<string, unknown> {
  const obj = tryParseJson(body);
  if (isJsonObject(obj)) return obj;
  throw unreadableAnswerError(model, `returned a body that is not a JSON object: ${bodyExcerpt(body)}`);
}

/** A stream event that is not the JSON the provider's wire format promises. */
export function malformedChunkError(model: CompiledModel): ApiError {
  return unreadableAnswerError(model, 'sent a stream event that is not valid JSON; the stream was ended.');
}
