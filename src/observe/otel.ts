// OpenTelemetry export over OTLP/HTTP JSON: spans (the request, the routing decision, each
// attempt, the response stream) with the GenAI semantic conventions plus TierFlow's attributes,
// and the GenAI client metrics gen_ai.client.token.usage and gen_ai.client.operation.duration.
// Loaded (dynamic import) only when OTEL_EXPORTER_OTLP_ENDPOINT (or a signal-specific endpoint)
// is set; see otelFromEnv. A small exporter of our own rather than the OpenTelemetry SDK: we
// build finished spans from timings the data plane records anyway, so nothing of a span API is
// on the request path, and the export is two JSON documents (docs/observability.md).
//
// Prompts and completions are never exported. Provider keys, virtual keys and client input are
// never attributes; the virtual key appears by its configured name only.
import type { CompiledModel } from '../core/config/compiled.js';
import { providerSpec } from '../core/providers/table.js';
import type { Logger } from './log.js';
import {
  formatTraceparent,
  newSpanId,
  newTraceId,
  parseTraceparent,
  type RequestTrace,
  type TracedAttempt,
  type TracedRequest,
  type Tracer,
} from './tracing.js';

const SCOPE = { name: 'tierflow', version: '0.1.0' };
const KIND_INTERNAL = 1;
const KIND_SERVER = 2;
const KIND_CLIENT = 3;
const STATUS_ERROR = 2;
const CUMULATIVE = 2;
/** Bucket boundaries the GenAI semantic conventions advise for the two histograms. */
const TOKEN_BOUNDS = [
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
];
const DURATION_BOUNDS = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
const MAX_QUEUE = 4096;
const MAX_BATCH = 512;

type AnyValue =
  | { stringValue: string }
  | { intValue: string }
  | { doubleValue: number }
  | { boolValue: boolean }
  | { arrayValue: { values: AnyValue[] } };
type KeyValue = { key: string; value: AnyValue };
type Attrs = Record<string, string | number | boolean | string[] | undefined>;

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: KeyValue[];
  events?: { timeUnixNano: string; name: string; attributes: KeyValue[] }[];
  status?: { code: number; message?: string };
}

export interface OtelSettings {
  tracesUrl?: string;
  metricsUrl?: string;
  headers: Record<string, string>;
  resource: Record<string, string>;
  scheduleDelayMs: number;
  metricIntervalMs: number;
}

/**
 * Settings from the standard OTEL_* variables, or undefined when nothing is to be exported.
 * Only the http/json protocol is spoken (the OTLP/HTTP port of every collector accepts it).
 */
export function otelSettingsFromEnv(env: NodeJS.ProcessEnv, log: Logger): OtelSettings | undefined {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return undefined;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.replace(/\/+$/, '');
  const signal = (specific: string | undefined, path: string, exporter: string | undefined) =>
    exporter?.toLowerCase() === 'none' ? undefined : specific || (base ? `${base}${path}` : undefined);
  const tracesUrl = signal(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, '/v1/traces', env.OTEL_TRACES_EXPORTER);
  const metricsUrl = signal(
    env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    '/v1/metrics',
    env.OTEL_METRICS_EXPORTER,
  );
  if (!tracesUrl && !metricsUrl) return undefined;
  const protocol = env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (protocol && protocol !== 'http/json')
    log.warn('OTEL_EXPORTER_OTLP_PROTOCOL: only http/json is supported; exporting http/json', { protocol });
  const resource: Record<string, string> = {
    ...pairs(env.OTEL_RESOURCE_ATTRIBUTES),
    'service.name':
      env.OTEL_SERVICE_NAME || pairs(env.OTEL_RESOURCE_ATTRIBUTES)['service.name'] || 'tierflow',
    'service.version': SCOPE.version,
  };
  return {
    ...(tracesUrl ? { tracesUrl } : {}),
    ...(metricsUrl ? { metricsUrl } : {}),
    headers: { ...pairs(env.OTEL_EXPORTER_OTLP_HEADERS) },
    resource,
    scheduleDelayMs: positive(env.OTEL_BSP_SCHEDULE_DELAY, 5000),
    metricIntervalMs: positive(env.OTEL_METRIC_EXPORT_INTERVAL, 60_000),
  };
}

/** `k1=v1,k2=v2` with percent-encoded values (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS). */
function pairs(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (text ?? '').split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    try {
      out[decodeURIComponent(part.slice(0, eq).trim())] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      /* malformed pair: skipped */
    }
  }
  return out;
}

function positive(v: string | undefined, fallback: number): number {
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

/** The `gen_ai.provider.name` of a provider type (well-known values of the semantic conventions). */
function genAiProvider(model: CompiledModel): string {
  return providerSpec(model.provider.type).genAiProviderName ?? model.provider.name;
}

const nanos = (ms: number): string => BigInt(Math.round((performance.timeOrigin + ms) * 1e6)).toString();

function kv(attrs: Attrs): KeyValue[] {
  const out: KeyValue[] = [];
  for (const key in attrs) {
    const v = attrs[key];
    if (v === undefined) continue;
    out.push({ key, value: anyValue(v) });
  }
  return out;
}

function anyValue(v: string | number | boolean | string[]): AnyValue {
  if (Array.isArray(v)) return { arrayValue: { values: v.map((s) => ({ stringValue: s })) } };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
}

class Histogram {
  readonly #points = new Map<
    string,
    { attrs: Attrs; counts: number[]; sum: number; min: number; max: number }
  >();
  constructor(
    readonly name: string,
    readonly unit: string,
    readonly description: string,
    readonly bounds: number[],
  ) {}

  record(value: number, attrs: Attrs): void {
    const key = JSON.stringify(attrs);
    let p = this.#points.get(key);
    if (!p) {
      p = { attrs, counts: new Array(this.bounds.length + 1).fill(0), sum: 0, min: value, max: value };
      this.#points.set(key, p);
    }
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    p.counts[i]!++;
    p.sum += value;
    p.min = Math.min(p.min, value);
    p.max = Math.max(p.max, value);
  }

  get empty(): boolean {
    return this.#points.size === 0;
  }

  toOtlp(start: string, now: string) {
    return {
      name: this.name,
      unit: this.unit,
      description: this.description,
      histogram: {
        aggregationTemporality: CUMULATIVE,
        dataPoints: [...this.#points.values()].map((p) => ({
          attributes: kv(p.attrs),
          startTimeUnixNano: start,
          timeUnixNano: now,
          count: String(p.counts.reduce((a, b) => a + b, 0)),
          sum: p.sum,
          min: p.min,
          max: p.max,
          bucketCounts: p.counts.map(String),
          explicitBounds: this.bounds,
        })),
      },
    };
  }
}

export class OtlpTracer implements Tracer {
  readonly #queue: OtlpSpan[] = [];
  readonly #resource: { attributes: KeyValue[] };
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #startedNanos = nanos(performance.now());
  readonly #tokens = new Histogram(
    'gen_ai.client.token.usage',
    '{token}',
    'Number of input and output tokens used.',
    TOKEN_BOUNDS,
  );
  readonly #duration = new Histogram(
    'gen_ai.client.operation.duration',
    's',
    'GenAI operation duration.',
    DURATION_BOUNDS,
  );
  #dropped = 0;
  #exporting: Promise<void> = Promise.resolve();
  #lastFailureLog = 0;

  constructor(
    readonly settings: OtelSettings,
    private readonly log: Logger,
    private readonly post: (
      url: string,
      body: string,
      headers: Record<string, string>,
    ) => Promise<number> = httpPost,
  ) {
    this.#resource = { attributes: kv(settings.resource) };
    if (settings.tracesUrl) this.#timers.push(setInterval(() => void this.flush(), settings.scheduleDelayMs));
    if (settings.metricsUrl)
      this.#timers.push(setInterval(() => void this.exportMetrics(), settings.metricIntervalMs));
    for (const t of this.#timers) t.unref();
  }

  start(traceparent: string | undefined, now: number): RequestTrace {
    const parent = parseTraceparent(traceparent);
    return {
      traceId: parent?.traceId ?? newTraceId(),
      spanId: newSpanId(),
      parentSpanId: parent?.spanId,
      sampled: parent?.sampled ?? true,
      startedAt: now,
    };
  }

  attempt(trace: RequestTrace): { spanId: string; traceparent: string } {
    const spanId = newSpanId();
    return { spanId, traceparent: formatTraceparent(trace.traceId, spanId, trace.sampled) };
  }

  end(trace: RequestTrace, r: TracedRequest): void {
    for (const a of r.attempts)
      if (a.timing) this.#recordAttemptMetrics(a, a.model === r.served ? r : undefined);
    if (!trace.sampled || !this.settings.tracesUrl) return;
    const plan = r.plan;
    const served = r.served;
    const requested = plan?.request.model;
    const failed = r.status >= 500;
    const spans: OtlpSpan[] = [];
    spans.push({
      traceId: trace.traceId,
      spanId: trace.spanId,
      ...(trace.parentSpanId ? { parentSpanId: trace.parentSpanId } : {}),
      name: requested ? `chat ${requested}` : 'chat',
      kind: KIND_SERVER,
      startTimeUnixNano: nanos(trace.startedAt),
      endTimeUnixNano: nanos(r.endedAt),
      attributes: kv({
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': requested,
        'gen_ai.response.model': served?.upstreamModel,
        'gen_ai.provider.name': served ? genAiProvider(served) : undefined,
        'gen_ai.usage.input_tokens': r.usage?.promptTokens,
        'gen_ai.usage.output_tokens': r.usage?.completionTokens,
        'http.response.status_code': r.status,
        'error.type': failed ? (r.error?.code ?? String(r.status)) : undefined,
        'tierflow.mode': plan ? (plan.policy ? 'auto' : 'explicit') : 'rejected',
        'tierflow.policy': plan?.policy?.name,
        'tierflow.tier': plan?.tier,
        'tierflow.score': plan?.score,
        'tierflow.provider': served?.provider.name,
        'tierflow.model': served?.name,
        'tierflow.attempts': r.attempts.length,
        'tierflow.stream': plan?.request.stream,
        'tierflow.cost_usd': r.cost?.costUsd,
        'tierflow.flagship_cost_usd': plan?.policy ? r.cost?.flagshipCostUsd : undefined,
        'tierflow.saved_usd':
          plan?.policy && r.cost ? Math.max(0, r.cost.flagshipCostUsd - r.cost.costUsd) : undefined,
        'tierflow.virtual_key': plan?.virtualKey?.name,
        'tierflow.sticky': plan?.conversation?.applied,
      }),
      ...(failed ? { status: { code: STATUS_ERROR, message: r.error?.message ?? '' } } : {}),
    });
    if (plan) {
      spans.push({
        traceId: trace.traceId,
        spanId: newSpanId(),
        parentSpanId: trace.spanId,
        name: 'tierflow.route',
        kind: KIND_INTERNAL,
        startTimeUnixNano: nanos(plan.startedAt),
        endTimeUnixNano: nanos(trace.decidedAt ?? plan.startedAt),
        attributes: kv({
          'tierflow.policy': plan.policy?.name,
          'tierflow.score': plan.score,
          'tierflow.tier': plan.tier,
          'tierflow.candidates': plan.candidates.map((c) => c.id),
          'tierflow.reasons': plan.reasons.length ? plan.reasons.slice(0, 8) : undefined,
          'tierflow.sticky': plan.conversation?.applied,
        }),
      });
    }
    r.attempts.forEach((a, i) => {
      if (!a.timing) return;
      const isServed = a.model === served && i === r.attempts.length - 1;
      const attemptSpan = a.spanId ?? newSpanId();
      const ok = a.outcome === 'success';
      spans.push({
        traceId: trace.traceId,
        spanId: attemptSpan,
        parentSpanId: trace.spanId,
        name: `chat ${a.model.upstreamModel}`,
        kind: KIND_CLIENT,
        startTimeUnixNano: nanos(a.timing.start),
        endTimeUnixNano: nanos(a.timing.end),
        attributes: kv({
          ...this.#genAiAttrs(a.model),
          'gen_ai.response.model': ok ? a.model.upstreamModel : undefined,
          'gen_ai.usage.input_tokens': isServed ? r.usage?.promptTokens : undefined,
          'gen_ai.usage.output_tokens': isServed ? r.usage?.completionTokens : undefined,
          'gen_ai.request.max_tokens': plan?.request.body.max_tokens ?? undefined,
          'server.address': host(a.model.provider.baseUrl),
          'http.response.status_code': a.status,
          'error.type': ok ? undefined : a.outcome,
          'tierflow.provider': a.model.provider.name,
          'tierflow.model': a.model.name,
          'tierflow.tier': a.model.tier,
          'tierflow.attempt': i + 1,
          'tierflow.outcome': a.outcome,
          'tierflow.time_to_first_token_ms':
            a.timing.firstToken !== undefined ? round(a.timing.firstToken - a.timing.start) : undefined,
        }),
        ...(ok ? {} : { status: { code: STATUS_ERROR, message: a.outcome } }),
      });
      if (isServed && plan?.request.stream && a.timing.firstByte !== undefined) {
        spans.push({
          traceId: trace.traceId,
          spanId: newSpanId(),
          parentSpanId: attemptSpan,
          name: 'tierflow.stream',
          kind: KIND_INTERNAL,
          startTimeUnixNano: nanos(a.timing.firstByte),
          endTimeUnixNano: nanos(a.timing.end),
          attributes: kv({
            'gen_ai.usage.output_tokens': r.usage?.completionTokens,
            'tierflow.time_to_first_token_ms':
              a.timing.firstToken !== undefined ? round(a.timing.firstToken - a.timing.start) : undefined,
          }),
          ...(a.timing.firstToken !== undefined
            ? { events: [{ timeUnixNano: nanos(a.timing.firstToken), name: 'first_token', attributes: [] }] }
            : {}),
        });
      }
    });
    if (this.#queue.length + spans.length > MAX_QUEUE) {
      this.#dropped += spans.length;
      return;
    }
    for (const s of spans) this.#queue.push(s);
    if (this.#queue.length >= MAX_BATCH) void this.flush();
  }

  #genAiAttrs(model: CompiledModel): Attrs {
    return {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': genAiProvider(model),
      'gen_ai.request.model': model.upstreamModel,
    };
  }

  #recordAttemptMetrics(a: TracedAttempt, served: TracedRequest | undefined): void {
    const t = a.timing!;
    const attrs = { ...this.#genAiAttrs(a.model), 'server.address': host(a.model.provider.baseUrl) };
    this.#duration.record((t.end - t.start) / 1000, {
      ...attrs,
      ...(a.outcome === 'success'
        ? { 'gen_ai.response.model': a.model.upstreamModel }
        : { 'error.type': a.outcome }),
    });
    const usage = served?.usage;
    if (!usage || a.outcome !== 'success') return;
    const withModel = { ...attrs, 'gen_ai.response.model': a.model.upstreamModel };
    this.#tokens.record(usage.promptTokens, { ...withModel, 'gen_ai.token.type': 'input' });
    this.#tokens.record(usage.completionTokens, { ...withModel, 'gen_ai.token.type': 'output' });
  }

  /** Sends the queued spans (in batches); resolves when done. */
  flush(): Promise<void> {
    this.#exporting = this.#exporting.then(async () => {
      while (this.#queue.length > 0 && this.settings.tracesUrl) {
        const batch = this.#queue.splice(0, MAX_BATCH);
        await this.#send(this.settings.tracesUrl, {
          resourceSpans: [{ resource: this.#resource, scopeSpans: [{ scope: SCOPE, spans: batch }] }],
        });
      }
      if (this.#dropped > 0) {
        this.log.warn('OpenTelemetry: spans dropped, the export queue was full', { dropped: this.#dropped });
        this.#dropped = 0;
      }
    });
    return this.#exporting;
  }

  exportMetrics(): Promise<void> {
    const url = this.settings.metricsUrl;
    if (!url || (this.#tokens.empty && this.#duration.empty)) return Promise.resolve();
    const now = nanos(performance.now());
    const metrics = [this.#duration, this.#tokens]
      .filter((h) => !h.empty)
      .map((h) => h.toOtlp(this.#startedNanos, now));
    this.#exporting = this.#exporting.then(() =>
      this.#send(url, {
        resourceMetrics: [{ resource: this.#resource, scopeMetrics: [{ scope: SCOPE, metrics }] }],
      }),
    );
    return this.#exporting;
  }

  async #send(url: string, payload: unknown): Promise<void> {
    let status: number | string;
    try {
      status = await this.post(url, JSON.stringify(payload), this.settings.headers);
      if (status >= 200 && status < 300) return;
    } catch (err) {
      status = (err as Error).message;
    }
    // One line per minute at most; the URL without query (it may carry a token), never the headers.
    const now = Date.now();
    if (now - this.#lastFailureLog > 60_000) {
      this.#lastFailureLog = now;
      this.log.warn('OpenTelemetry export failed; data dropped', { url: url.split('?')[0], status });
    }
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    await this.flush();
    await this.exportMetrics();
  }
}

const round = (ms: number) => Math.round(ms * 10) / 10;

function host(url: string): string | undefined {
  try {
    return new URL(url).hostname;
  } catch {
    return undefined;
  }
}

async function httpPost(url: string, body: string, headers: Record<string, string>): Promise<number> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  await res.arrayBuffer();
  return res.status;
}

/** The tracer for the OTEL_* environment, or undefined when nothing is to be exported. */
export function otelFromEnv(env: NodeJS.ProcessEnv, log: Logger): OtlpTracer | undefined {
  const settings = otelSettingsFromEnv(env, log);
  if (!settings) return undefined;
  log.info('OpenTelemetry export on', {
    traces: settings.tracesUrl?.split('?')[0],
    metrics: settings.metricsUrl?.split('?')[0],
    serviceName: settings.resource['service.name'],
  });
  return new OtlpTracer(settings, log);
}
