// The operations endpoints every TierFlow process serves the same way: GET /healthz (alive),
// /readyz (ready for traffic) and /metrics (Prometheus). The gateway mounts them on its own port;
// the sidecar and the controller run them on a separate port.
//
// /metrics shows virtual key names, spend and provider names: with a token configured
// (TIERFLOW_METRICS_TOKEN, or TIERFLOW_METRICS_TOKEN_FILE for a mounted Secret) it answers only
// `Authorization: Bearer <token>`. Probes stay open.
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { ApiError } from '../core/errors.js';
import { Secret } from '../core/secret.js';

export interface OpsEndpoints {
  registry: Registry;
  /** Undefined or true: ready. A string says why not (shown in the /readyz body). */
  ready: () => true | string;
  /** When set, GET /metrics requires `Authorization: Bearer <token>`. */
  metricsToken?: Secret;
}

/** The /metrics bearer token from the environment, if one is configured. */
export function metricsTokenFromEnv(env: NodeJS.ProcessEnv = process.env): Secret | undefined {
  const file = env.TIERFLOW_METRICS_TOKEN_FILE;
  const value = file ? readFileSync(file, 'utf8').trim() : env.TIERFLOW_METRICS_TOKEN;
  return value ? new Secret(value) : undefined;
}

function bearerMatches(header: string | undefined, token: Secret): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7).trim());
  const want = Buffer.from(token.reveal());
  return given.length === want.length && timingSafeEqual(given, want);
}

export const OPS_PATHS: ReadonlySet<string> = new Set(['/healthz', '/livez', '/readyz', '/metrics']);

/** Answers GET of an ops path and returns true; false for anything else (the caller answers). */
export function serveOps(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  ops: OpsEndpoints,
): boolean {
  if (req.method !== 'GET' || !OPS_PATHS.has(path)) return false;
  if (path === '/metrics') {
    if (ops.metricsToken && !bearerMatches(req.headers.authorization, ops.metricsToken)) {
      res.setHeader('www-authenticate', 'Bearer');
      json(
        res,
        401,
        new ApiError(
          401,
          '/metrics needs the metrics bearer token (Authorization: Bearer <TIERFLOW_METRICS_TOKEN>).',
          'authentication_error',
          'invalid_metrics_token',
        ).toBody(),
      );
      return true;
    }
    ops.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': ops.registry.contentType });
        res.end(text);
      },
      () => json(res, 500, { status: 'error', reason: 'metrics unavailable' }),
    );
    return true;
  }
  if (path === '/readyz') {
    const ready = ops.ready();
    if (ready === true) json(res, 200, { status: 'ready' });
    else json(res, 503, { status: 'not ready', reason: ready });
    return true;
  }
  json(res, 200, { status: 'ok' });
  return true;
}

/**
 * An HTTP server with the ops endpoints only (404 elsewhere). Without a host it listens on "::"
 * (IPv6 and IPv4: probes work in IPv4, IPv6-only and dual-stack clusters), or 0.0.0.0 on a host
 * without IPv6 (Node's own fallback).
 */
export function startOpsServer(ops: OpsEndpoints, port: number, host?: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    req.resume();
    if (!serveOps(req, res, path, ops)) json(res, 404, { status: 'not found' });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve(server);
    };
    if (host === undefined) server.listen(port, done);
    else server.listen(port, host, done);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
