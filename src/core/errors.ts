// OpenAI-style errors: {"error":{"message","type","param","code"}} with an HTTP status.

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'insufficient_quota'
  | 'api_error'
  | 'upstream_error'
  | 'timeout_error';

export interface ErrorBody {
  error: { message: string; type: ErrorType | string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  /** Headers the answer carries besides the body (e.g. Retry-After of a 429 TierFlow itself gives). */
  headers?: Record<string, string>;

  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType | string = 'invalid_request_error',
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  toJson(): string {
    return JSON.stringify(this.toBody());
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, 'invalid_request_error', code, param);
