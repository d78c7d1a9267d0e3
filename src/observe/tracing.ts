// Request tracing as the data planes see it: a trace per request (W3C trace context from the
// client, continued to the provider) and what to report when it ends. The exporter behind it
// (observe/otel.ts) is loaded only when OpenTelemetry export is configured; without it the data
// planes hold no Tracer and every hook is one `undefined` check.
import { randomBytes } from 'node:crypto';
import type { CompiledModel } from '../core/config/compiled.js';
import type { RequestCost } from '../core/accounting.js';
import type { ApiError } from '../core/errors.js';
import type { AttemptOutcome } from '../core/failover.js';
import type { Usage } from '../core/openai.js';
import type { RoutePlan } from '../core/router.js';

/** Clock readings in ms of the router's clock (performance.now()). */
export interface AttemptTiming {
  start: number;
  firstByte?: number;
  firstToken?: number;
  end: number;
}

export interface TracedAttempt {
  model: CompiledModel;
  outcome: AttemptOutcome;
  status?: number;
  /** The span id sent to the provider in `traceparent`. */
  spanId?: string;
  timing?: AttemptTiming;
}

export interface TracedRequest {
  /** Undefined when the request was rejected before routing. */
  plan?: RoutePlan;
  status: number;
  attempts: readonly TracedAttempt[];
  served?: CompiledModel;
  usage?: Usage;
  cost?: RequestCost;
  error?: ApiError;
  endedAt: number;
}

export interface RequestTrace {
  readonly traceId: string;
  /** The request's own (server) span. */
  readonly spanId: string;
  /** The client's span, from its traceparent. */
  readonly parentSpanId: string | undefined;
  readonly sampled: boolean;
  readonly startedAt: number;
  /** When the routing decision was made (set by the data plane). */
  decidedAt?: number;
}

export interface Tracer {
  /** A trace for a request that arrived at `now`, continuing the client's `traceparent` if valid. */
  start(traceparent: string | undefined, now: number): RequestTrace;
  /** A span id for the next attempt and the `traceparent` header that carries it to the provider. */
  attempt(trace: RequestTrace): { spanId: string; traceparent: string };
  /** The request is over: its spans (and GenAI metrics) go to the exporter. */
  end(trace: RequestTrace, request: TracedRequest): void;
  close(): Promise<void>;
}

/**
 * Whether the environment asks for OpenTelemetry export (the exporter module is loaded only
 * then): an OTLP endpoint is set and the SDK is not disabled.
 */
export function otelRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return false;
  return !!(
    env.OTEL_EXPORTER_OTLP_ENDPOINT ||
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ||
    env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT
  );
}

/** The tracer for the OTEL_* environment, loading the exporter only when export is configured. */
export async function tracerFromEnv(
  env: NodeJS.ProcessEnv,
  log: import('./log.js').Logger,
): Promise<Tracer | undefined> {
  if (!otelRequested(env)) return undefined;
  const { otelFromEnv } = await import('./otel.js');
  return otelFromEnv(env, log);
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** A W3C traceparent header, or undefined when absent or invalid (then a new trace starts). */
export function parseTraceparent(
  header: string | undefined,
): { traceId: string; spanId: string; sampled: boolean } | undefined {
  if (!header) return undefined;
  const m = TRACEPARENT.exec(header.trim().toLowerCase());
  if (!m || m[1] === 'ff' || m[2] === ZERO_TRACE || m[3] === ZERO_SPAN) return undefined;
  return { traceId: m[2]!, spanId: m[3]!, sampled: (parseInt(m[4]!, 16) & 1) === 1 };
}

export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

export const newTraceId = (): string => randomBytes(16).toString('hex');
export const newSpanId = (): string => randomBytes(8).toString('hex');
