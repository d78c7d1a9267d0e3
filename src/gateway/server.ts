// The standalone OpenAI-compatible gateway: HTTP -> the shared pipeline -> undici upstream.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { unsupportedContentType } from '../core/content-type.js';
import { ApiError } from '../core/errors.js';
import type { Router } from '../core/router.js';
import type { Secret } from '../core/secret.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { type OpsEndpoints, OPS_PATHS, serveOps } from '../observe/ops-http.js';
import { type AttemptDeps, runAttempts } from '../pipeline/attempts.js';
import type { UpstreamClient } from '../pipeline/client.js';
import { planRequest } from '../pipeline/plan.js';
import { recordRequest } from '../pipeline/record.js';
import {
  applyServerLimits,
  DEFAULT_LIMITS,
  defaultMaxConnections,
  type ServerLimits,
} from './http-hardening.js';
import { HttpSink } from './http-sink.js';
import { listModels } from '../pipeline/models.js';

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
}

export interface Gateway {
  server: Server;
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), then closes. */
  close(graceMs?: number): Promise<void>;
}

const API_PATHS: ReadonlySet<string> = new Set([
  '/v1/chat/completions',
  '/chat/completions',
  '/v1/models',
  '/models',
]);

export function createGateway(options: GatewayOptions): Gateway {
  const deps: AttemptDeps = options;
  const { router, metrics, log } = options;
  let inflight = 0;
  let draining = false;
  const ops: OpsEndpoints = {
    registry: metrics.registry,
    metricsToken: options.metricsToken,
    ready: () =>
      draining ? 'shutting down' : (options.ready?.() ?? true) ? true : 'no configuration loaded',
  };

  // Checked every second, so a request timeout fires close to its deadline (Node's default: 30 s).
  const server = createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
    const requestId = randomUUID();
    res.setHeader('x-request-id', requestId);
    const path = (req.url ?? '/').split('?', 1)[0]!;
    try {
      if (req.method === 'POST' && (path === '/v1/chat/completions' || path === '/chat/completions')) {
        inflight++;
        res.on('close', () => inflight--);
        if (draining) res.setHeader('connection', 'close');
        void chat(req, res, requestId).catch((err: unknown) => internalError(res, err, requestId));
        return;
      }
      if (req.method === 'GET' && (path === '/v1/models' || path === '/models')) {
        return json(res, 200, listModels(router.config));
      }
      if (serveOps(req, res, path, ops)) return;
      req.resume();
      if (API_PATHS.has(path) || OPS_PATHS.has(path)) {
        return error(
          res,
          new ApiError(
            405,
            `Method ${req.method} is not allowed on ${path}.`,
            'invalid_request_error',
            'method_not_allowed',
          ),
        );
      }
      return error(
        res,
        new ApiError(
          404,
          `Unknown path ${path.length > 200 ? path.slice(0, 200) + '…' : path}. TierFlow serves POST /v1/chat/completions and GET /v1/models.`,
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

  async function chat(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const wrongType = unsupportedContentType(header(req, 'content-type'));
    if (wrongType) {
      req.resume();
      res.setHeader('connection', 'close');
      return error(res, wrongType);
    }
    let body: Buffer;
    try {
      body = await readBody(req, router.bodyLimit);
    } catch (err) {
      if (err instanceof ApiError) {
        res.setHeader('connection', 'close');
        return error(res, err);
      }
      return; // client went away while sending
    }
    const plan = planRequest(deps, body, header(req, 'authorization'), requestId);
    if (plan instanceof ApiError) return error(res, plan);
    const sink = new HttpSink(res, {});
    const outcome = await runAttempts(plan, deps, sink);
    recordRequest(deps, plan, outcome, requestId);
  }

  function internalError(res: ServerResponse, err: unknown, requestId: string): void {
    log.error('internal error', { requestId, error: err instanceof Error ? err.message : String(err) });
    if (!res.headersSent) {
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

function error(res: ServerResponse, err: ApiError): void {
  res.setHeader('x-tierflow-attempts', '0');
  json(res, err.status, err.toBody());
}
