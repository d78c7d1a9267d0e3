// plan for a Responses API request (POST /v1/responses): the request in chat form goes through
// the same decision as a chat completion (planRequest), and the plan carries the Responses
// facts, so each attempt's translator answers in the Responses format (src/core/responses).
// Translated responses are kept in this process's ResponseStore (bounded, see
// src/core/responses/store.ts) unless the request says `store: false`, so previous_response_id
// continues them on any provider; the owner of an entry is the client's bearer token (hashed).
import { createHash } from 'node:crypto';
import { ApiError } from '../core/errors.js';
import { type ParsedRequest, validateChatRequest } from '../core/parse.js';
import { parseResponsesRequest } from '../core/responses/request.js';
import { ResponseStore } from '../core/responses/store.js';
import { headerValue } from '../core/route-request.js';
import type { RoutePlan } from '../core/router.js';
import { planRequest, type ReceivedRequest, rejected } from './plan.js';
import type { DataPlaneDeps } from './record.js';

/** One per process: both data planes run one pipeline per process. */
export const responseStore = new ResponseStore();

export function planResponsesRequest(
  deps: DataPlaneDeps,
  received: ReceivedRequest,
  requestId: string,
): RoutePlan | ApiError {
  const authorization = headerValue(received.headers, 'authorization');
  const owner = authorization ? createHash('sha256').update(authorization).digest('hex') : '';
  let request: ParsedRequest;
  try {
    const parsed = parseResponsesRequest(received.body, deps.router.bodyLimit, (id) =>
      responseStore.get(id, owner, Date.now()),
    );
    // The chat form is checked like any chat request, without a round trip through JSON.
    request = validateChatRequest(parsed.chat);
    const responses = parsed.responses;
    if (responses.body.store !== false) {
      const conversation = responses.conversation;
      responses.remember = (id, answer) =>
        responseStore.set(id, owner, [...conversation, answer], Date.now());
    }
    request.responses = responses;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return rejected(deps, err, requestId);
  }
  return planRequest(deps, { body: request, headers: received.headers }, requestId);
}
