// plan for a Responses API request (POST /v1/responses): the request in chat form goes through
// the same decision as a chat completion (planRequest), and the plan carries the Responses
// facts, so each attempt's translator answers in the Responses format (src/core/responses).
import { ApiError } from '../core/errors.js';
import { type ParsedRequest, validateChatRequest } from '../core/parse.js';
import { parseResponsesRequest } from '../core/responses/request.js';
import type { RoutePlan } from '../core/router.js';
import { planRequest, type ReceivedRequest, rejected } from './plan.js';
import type { DataPlaneDeps } from './record.js';

export function planResponsesRequest(
  deps: DataPlaneDeps,
  received: ReceivedRequest,
  requestId: string,
): RoutePlan | ApiError {
  let request: ParsedRequest;
  try {
    const parsed = parseResponsesRequest(received.body, deps.router.bodyLimit);
    // The chat form is checked like any chat request, without a round trip through JSON.
    request = validateChatRequest(parsed.chat);
    request.responses = parsed.responses;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return rejected(deps, err, requestId);
  }
  return planRequest(deps, { body: request, headers: received.headers }, requestId);
}
