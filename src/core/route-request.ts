// What the router sees of one request: its body and the client's headers, the same shape from
// both data planes (the gateway's IncomingMessage headers, the sidecar's Envoy header map).
import type { ParsedRequest } from './parse.js';

/**
 * Client request headers by lower-case name. A repeated header is one ", "-joined string (or, as
 * Node keeps some, an array of its values).
 */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface RouteRequest {
  /**
   * The chat-completions body: the bytes as received (parsed and validated by the router), or a
   * request already parsed, e.g. one converted from another API into the chat shape.
   */
  body: Buffer | string | ParsedRequest;
  /** Client headers; absent means none (authorization included). */
  headers?: RequestHeaders;
}

const NO_HEADERS: RequestHeaders = Object.freeze({});

/** One header's value (a repeated header joined with ", "), or undefined. `name` is lower-case. */
export function headerValue(headers: RequestHeaders | undefined, name: string): string | undefined {
  const v = (headers ?? NO_HEADERS)[name];
  return v === undefined || typeof v === 'string' ? v : v.join(', ');
}
