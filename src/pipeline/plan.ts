// plan: the routing decision for one request, timed and counted, the same way for both data
// planes (the decision itself is core/router.ts).
import { ApiError } from '../core/errors.js';
import { limitHeaders } from '../core/limit-headers.js';
import { releaseRequest } from '../core/parse.js';
import type { RequestHeaders, RoutePlan, RouteRequest } from '../core/router.js';
import { statusClass } from '../observe/metrics.js';
import type { DataPlaneDeps } from './record.js';

/** A request as a data plane received it: the body's bytes and the client's headers. */
export interface ReceivedRequest {
  body: Buffer;
  headers: RequestHeaders;
}

/** Plans a received request of one API: planRequest (chat completions), planEmbeddingsRequest, planResponsesRequest. */
export type Planner = (
  deps: DataPlaneDeps,
  received: ReceivedRequest,
  requestId: string,
) => RoutePlan | ApiError;

/**
 * The routing decision, timed. A request the router rejects (bad input, unknown model, auth,
 * limits) is counted and logged here and comes back as the ApiError to answer with. `route.body`
 * is the chat-completions body, as bytes or already parsed (the chat form of a Responses request).
 */
export function planRequest(
  deps: DataPlaneDeps,
  route: RouteRequest,
  requestId: string,
): RoutePlan | ApiError {
  return decide(deps, requestId, route, undefined);
}

/** Router.plan of `chat`, or Router.planEmbeddings of `embeddings`, timed and counted. */
function decide(
  deps: DataPlaneDeps,
  requestId: string,
  chat: RouteRequest | undefined,
  embeddings: ReceivedRequest | undefined,
): RoutePlan | ApiError {
  const t0 = performance.now();
  try {
    const planned = chat ? deps.router.plan(chat) : deps.router.planEmbeddings(embeddings!);
    const key = planned.virtualKey;
    if (key && (key.rpm !== undefined || key.tpm !== undefined || key.budget)) {
      planned.limitHeaders = limitHeaders(deps.router.limits.status(key));
    }
    deps.metrics.decisionSeconds.observe((performance.now() - t0) / 1000);
    if (planned.policy && planned.score !== undefined) {
      deps.metrics.scoreOf(planned.policy.name).observe(planned.score);
      const applied = planned.conversation?.applied;
      if (applied) deps.metrics.stickyRoutes.inc({ policy: planned.policy.name, applied });
    }
    return planned;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return rejected(deps, err, requestId);
  }
}

/** A request refused before routing: counted and logged; the ApiError to answer with. */
export function rejected(deps: DataPlaneDeps, err: ApiError, requestId: string): ApiError {
  deps.metrics.requests.inc({
    mode: 'rejected',
    policy: 'none',
    tier: 'none',
    provider: 'none',
    model: 'none',
    status_class: statusClass(err.status),
  });
  deps.log.info('request rejected', { requestId, status: err.status, error: err.code ?? err.type });
  return err;
}

/**
 * A streamed response has reached the client, so nothing can fail over any more: the request's
 * messages and its raw bytes (often the largest objects of a request, kept for rebuilding it for
 * another candidate) can go while the stream stays open. Nothing reads them after this point.
 */
export function releaseMessages(plan: RoutePlan): void {
  releaseRequest(plan.request);
}

/** The decision for an embeddings body (POST /v1/embeddings), timed and counted like planRequest. */
export const planEmbeddingsRequest: Planner = (deps, received, requestId) =>
  decide(deps, requestId, undefined, received);
