// The no-op processor: answers CONTINUE to every message with the matching member. Same protos,
// same server and transport as TierFlow's; the benchmark's baseline and a protocol smoke test.
import type { StreamProcessor } from './server.js';
import type { ProcessingRequest, ProcessingResponse } from './types.js';

const CONTINUE = { response: { status: 'CONTINUE' as const } };

export function noopAnswer(req: ProcessingRequest): ProcessingResponse {
  switch (req.request) {
    case 'request_headers':
      return { request_headers: CONTINUE };
    case 'request_body':
      return { request_body: CONTINUE };
    case 'response_headers':
      return { response_headers: CONTINUE };
    case 'response_body':
      return { response_body: CONTINUE };
    case 'request_trailers':
      return { request_trailers: {} };
    case 'response_trailers':
      return { response_trailers: {} };
    default:
      // An empty or unknown message still gets one answer; Envoy never sends one.
      return { request_headers: CONTINUE };
  }
}

export function noopProcessor(): StreamProcessor {
  return { onMessage: noopAnswer, onEnd: () => {} };
}
