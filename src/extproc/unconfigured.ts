// The processor while the sidecar has no configuration yet (the namespace's objects cannot be read
// or do not compile): every request gets a fast OpenAI-style 503 that says why, instead of a hang,
// an opaque 500 or a request sent unrouted.
import { noopAnswer } from './noop.js';
import type { ProcessorFactory } from './server.js';
import type { ProcessingRequest, ProcessingResponse } from './types.js';

export const NOT_CONFIGURED_CODE = 'tierflow_not_configured';

export function notConfiguredResponse(reason: string): ProcessingResponse {
  const body = JSON.stringify({
    error: {
      message: `TierFlow has no routing configuration yet: ${reason}.`,
      type: 'api_error',
      param: null,
      code: NOT_CONFIGURED_CODE,
    },
  });
  return {
    immediate_response: {
      status: { code: 503 },
      headers: {
        set_headers: [
          { header: { key: 'content-type', raw_value: Buffer.from('application/json') } },
          { header: { key: 'retry-after', raw_value: Buffer.from('5') } },
        ],
      },
      body: Buffer.from(body),
      details: NOT_CONFIGURED_CODE,
    },
  };
}

/** `reason()` is read per request, so the answer follows what the sidecar is waiting for. */
export function unconfiguredProcessor(reason: () => string): ProcessorFactory {
  return () => ({
    onMessage: (req: ProcessingRequest) =>
      req.request === 'request_headers' ? notConfiguredResponse(reason()) : noopAnswer(req),
    onEnd: () => {},
  });
}
