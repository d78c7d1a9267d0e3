// The standalone OpenAI-compatible gateway: HTTP -> the shared pipeline -> undici upstream.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CompiledConfig } from '../core/config/compiled.js';
import { unsupportedContentType } from '../core/content-type.js';
import { ApiError } from '../core/errors.js';
import { authenticate, type Router } from '../core/router.js';
import type { Secret } from '../core/secret.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { type OpsEndpoints, OPS_PATHS, serveOps } from '../observe/ops-http.js';
import { RequestAttempts } from '../pipeline/engine.js';
import { type AttemptDeps, runAttempts } from '../pipeline/send.js';
import type { UpstreamClient } from '../pipeline/client.js';
import { planEmbeddingsRequest, type Planner, planRequest } from '../pipeline/plan.js';
import { planResponsesRequest } from '../pipeline/responses.js';
import { recordRequest, traceRejected } from '../pipeline/record.js';
import { releaseAfterRequest } from '../pipeline/release-memory.js';
import type { Tracer } from '../observe/tracing.js';
import {
  applyServerLimits,
  DEFAULT_LIMITS,
  defaultMaxConnections,
  type ServerLimits,
} from './http-hardening.js';
import { HttpSink } from './http-sink.js';
import { newRequestId } from './request-id.js';
import { listModels, modelNotFound, retrieveModel } from '../pipeline/models.js';

export interface GatewayOptions {
  router: Router;
  metrics: Metrics;
  log: Logger;
  client: UpstreamClient;
  /** Reported by /readyz; false while no config has loaded. */
  ready?: () => boolean;
  /** When set, GET /metrics requires it as a bearer token. */
  metricsToken?: Secret;
  /** Timeouts and the connection limit (src/gateway/http-hardening.ts); defaults otherwise. */
  limits?: Partial<ServerLimits>;
  /** OpenTelemetry export (only when configured). */
  tracer?: Tracer;
}

export interface Gateway {
  server: Server;
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), then closes. */
  close(graceMs?: number): Promise<void>;
}

const CHAT_PATHS: ReadonlySet<string> = new Set(['/v1/chat/completions', '/chat/completions']);
const RESPONSES_PATHS: ReadonlySet<string> = new Set(['/v1/responses', '/responses']);
const EMBEDDINGS_PATHS: ReadonlySet<string> = new Set(['/v1/embeddings', '/embeddings']);
const MODELS_PATHS: ReadonlySet<string> = new Set(['/v1/models', '/models']);
const SERVED =
  'POST /v1/chat/completions, POST /v1/responses, POST /v1/embeddings, GET /v1/models and GET /v1/models/{id}';

/** The OpenAI API's paths (with or without the /v1 prefix): they need a virtual key when keys are configured. */
function isApiPath(path: string): boolean {
  return (
    path.startsWith('/v1/') ||
    CHAT_PATHS.has(path) ||
    RESPONSES_PATHS.has(path) ||
    EMBEDDINGS_PATHS.has(path) ||
    MODELS_PATHS.has(path) ||
    path.startsWith('/models/')
  );
}

/** `/v1/models/{id}` -> id (percent-decoded: SDKs encode the `/` of `provider/model`); else undefined. */
function modelIdOf(path: string): string | undefined {
  const rest = path.startsWith('/v1/models/')
    ? path.slice(11)
    : path.startsWith('/models/')
      ? path.slice(8)
      : undefined;
  if (!rest) return undefined;
  try {
    return decodeURIComponent(rest);
  } catch {
    return rest;
  }
}

export function createGateway(options: GatewayOptions): Gateway {
  const deps: AttemptDeps = options;
  const { router, metrics, log } = options;
  let inflight = 0;
  let draining = false;
  const ops: OpsEndpoints = {
    registry: metrics.registry,
    metricsToken: options.metricsToken,
    ready: () => {
      if (draining) return 'shutting down';
      if (options.ready?.() === false) return 'no configuration loaded';
      return router.config.models.size > 0 ? true : noUsableProvider(router.config);
    },
  };

  const apiDone = () => {
    inflight--;
  };

  // Checked every second, so a request timeout fires close to its deadline (Node's default: 30 s).
  const server = createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
    const requestId = newRequestId();
    const path = pathOf(req.url);
    try {
      const responses = RESPONSES_PATHS.has(path);
      const embeddings = EMBEDDINGS_PATHS.has(path);
      // An API request carries its x-request-id in the headers its answer is written with (an
      // earlier setHeader would send writeHead down Node's slow merging path); the others get it here.
      if (req.method === 'POST' && (responses || embeddings || CHAT_PATHS.has(path))) {
        inflight++;
        res.on('close', apiDone);
        if (draining) res.setHeader('connection', 'close');
        const plan = responses ? planResponsesRequest : embeddings ? planEmbeddingsRequest : planRequest;
        void chat(req, res, requestId, plan);
        return;
      }
      res.setHeader('x-request-id', requestId);
      if (serveOps(req, res, path, ops)) return;
      req.resume();
      if (isApiPath(path)) return api(req, res, path);
      if (OPS_PATHS.has(path)) return error(res, methodNotAllowed(req, path));
      return error(
        res,
        new ApiError(
          404,
          `Unknown path ${path.length > 200 ? path.slice(0, 200) + '…' : path}. TierFlow serves ${SERVED}.`,
          'invalid_request_error',
          'unknown_url',
        ),
      );
    } catch (err) {
      internalError(res, err, requestId);
    }
  });

  applyServerLimits(
    server,
    { ...DEFAULT_LIMITS, maxConnections: defaultMaxConnections(), ...options.limits },
    log,
  );

  /** Every API path but POST chat: the virtual key first (when keys are configured), then the path. */
  function api(req: IncomingMessage, res: ServerResponse, path: string): void {
    const config = router.config;
    let key;
    try {
      key = authenticate(config, header(req, 'authorization'));
    } catch (err) {
      if (err instanceof ApiError) return error(res, err);
      throw err;
    }
    const id = modelIdOf(path);
    if (MODELS_PATHS.has(path) || id !== undefined) {
      if (req.method !== 'GET') return error(res, methodNotAllowed(req, path));
      if (id === undefined) return json(res, 200, listModels(config, key));
      const model = retrieveModel(config, id, key);
      return model ? json(res, 200, model) : error(res, modelNotFound(id));
    }
    if (CHAT_PATHS.has(path) || RESPONSES_PATHS.has(path) || EMBEDDINGS_PATHS.has(path))
      return error(res, methodNotAllowed(req, path));
    return error(
      res,
      new ApiError(
        404,
        `Unknown path ${path}. TierFlow serves ${SERVED}.`,
        'invalid_request_error',
        'unknown_url',
      ),
    );
  }

  /** POST chat completions, responses or embeddings: `plan` is the one that reads the body's API. */
  async function chat(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    plan: Planner,
  ): Promise<void> {
    // Anything thrown here is answered as an internal error (a catch here rather than one on
    // the caller's promise: no extra promise and closure per request).
    try {
      // Tracing off: the arguments are not even evaluated.
      const trace = deps.tracer?.start(header(req, 'traceparent'), deps.router.now());
      const wrongType = unsupportedContentType(header(req, 'content-type'));
      if (wrongType) {
        req.resume();
        res.setHeader('x-request-id', requestId);
        res.setHeader('connection', 'close');
        traceRejected(deps, trace, wrongType);
        return error(res, wrongType);
      }
      let body: Buffer;
      try {
        body = await readBody(req, router.bodyLimit);
      } catch (err) {
        if (err instanceof ApiError) {
          res.setHeader('x-request-id', requestId);
          res.setHeader('connection', 'close');
          return error(res, err);
        }
        return; // client went away while sending
      }
      try {
        const planned = plan(deps, { body, headers: req.headers }, requestId);
        if (planned instanceof ApiError) {
          traceRejected(deps, trace, planned);
          res.setHeader('x-request-id', requestId);
          return error(res, planned);
        }
        if (trace) trace.decidedAt = deps.router.now();
        const outcome = await runAttempts(
          new RequestAttempts(planned, deps, requestId, trace),
          options.client,
          new HttpSink(res, requestId),
        );
        recordRequest(deps, planned, outcome, requestId, trace);
      } finally {
        releaseAfterRequest(body.length);
      }
    } catch (err) {
      internalError(res, err, requestId);
    }
  }

  function internalError(res: ServerResponse, err: unknown, requestId: string): void {
    log.error('internal error', { requestId, error: err instanceof Error ? err.message : String(err) });
    if (!res.headersSent) {
      res.setHeader('x-request-id', requestId);
      error(
        res,
        new ApiError(500, `TierFlow internal error (request ${requestId}).`, 'api_error', 'internal_error'),
      );
    } else {
      res.destroy();
    }
  }

  return {
    server,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: async (graceMs = 10_000) => {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const until = Date.now() + graceMs;
      while (inflight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Why nothing can be served: every provider and why it is disabled. */
export function noUsableProvider(config: CompiledConfig): string {
  const providers = [...config.providers.values()];
  if (providers.length === 0) return 'no provider is configured';
  return (
    'no provider can serve a model: ' +
    providers.map((p) => `${p.name} (${p.disabledReason ?? 'no models'})`).join(', ')
  );
}

/** The request target without its query (the target itself when it has none: no copy). */
function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(tooLarge(declared, limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(size, limit));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('aborted')));
  });
}

function tooLarge(size: number, limit: number): ApiError {
  return new ApiError(
    413,
    `Request body of ${size}+ bytes exceeds the limit of ${limit} bytes.`,
    'invalid_request_error',
    'request_too_large',
  );
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function methodNotAllowed(req: IncomingMessage, path: string): ApiError {
  return new ApiError(
    405,
    `Method ${req.method} is not allowed on ${path}.`,
    'invalid_request_error',
    'method_not_allowed',
  );
}

function error(res: ServerResponse, err: ApiError): void {
  res.setHeader('x-tierflow-attempts', '0');
  if (err.headers) for (const k in err.headers) res.setHeader(k, err.headers[k]!);
  json(res, err.status, err.toBody());
}
