// What the gateway's HTTP server does against slow, broken or hostile clients:
// - headersTimeout / requestTimeout: a request must arrive in full (headers, then body) in
//   bounded time; a slow-loris connection gets a 408 and is closed. requestTimeout covers
//   receiving the request only, never a long streamed response.
// - keepAliveTimeout: an idle keep-alive connection is closed.
// - maxConnections: beyond it new connections are refused at accept, before they can exhaust the
//   process's descriptors (which would make provider connects fail with EMFILE). The default is
//   three quarters of the descriptor limit.
// - clientError / checkExpectation: Node's own rejections (malformed requests, oversized headers,
//   timeouts, an unsupported Expect) get an OpenAI-style JSON error instead of an empty body.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApiError } from '../core/errors.js';
import type { Logger } from '../observe/log.js';

export interface ServerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
}

export const DEFAULT_LIMITS: Omit<ServerLimits, 'maxConnections'> = {
  headersTimeoutMs: 15_000,
  requestTimeoutMs: 120_000,
  // Above the 60 s idle timeout of common load balancers, so they close first.
  keepAliveTimeoutMs: 65_000,
};
const FALLBACK_MAX_CONNECTIONS = 4096;

/** 3/4 of the soft descriptor limit (the rest: provider sockets, files, Redis), or 4096. */
export function defaultMaxConnections(limitsFile = '/proc/self/limits'): number {
  try {
    const line = readFileSync(limitsFile, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    if (Number.isInteger(soft) && soft > 0) return Math.max(16, Math.floor((soft * 3) / 4));
  } catch {
    /* not Linux: use the fallback */
  }
  return FALLBACK_MAX_CONNECTIONS;
}

/** Status of a Node HTTP parser / server error, as the client should see it. */
function statusOf(code: string | undefined): number {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 408;
    case 'HPE_HEADER_OVERFLOW':
      return 431;
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return 413;
    default:
      return 400;
  }
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  431: 'Request Header Fields Too Large',
};

/** The raw HTTP response for a request Node's parser refused (the socket is closed after it). */
export function clientErrorResponse(code: string | undefined): string {
  const status = statusOf(code);
  const message =
    status === 408
      ? 'The request did not arrive in time (headers or body too slow).'
      : status === 431
        ? 'Request headers are too large.'
        : status === 413
          ? 'Request chunk extensions are too large.'
          : 'Malformed HTTP request.';
  const body = new ApiError(
    status,
    message,
    'invalid_request_error',
    status === 408 ? 'request_timeout' : 'bad_http_request',
  ).toJson();
  return (
    `HTTP/1.1 ${status} ${REASONS[status]}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
}

export function applyServerLimits(server: Server, limits: ServerLimits, log: Logger): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const started = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || started?.headersSent) {
      socket.destroy();
      return;
    }
    socket.end(clientErrorResponse(err.code));
  });
  // `Expect:` other than 100-continue: Node would answer 417 with an empty body.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    const body = new ApiError(
      417,
      `Unsupported Expect header '${String(req.headers.expect).slice(0, 100)}'; only 100-continue is supported.`,
      'invalid_request_error',
      'expectation_failed',
    ).toJson();
    res.writeHead(417, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    res.end(body);
  });
  let lastDropLog = 0;
  server.on('drop', () => {
    const now = Date.now();
    if (now - lastDropLog < 10_000) return;
    lastDropLog = now;
    log.warn('connection limit reached; refusing new connections', {
      maxConnections: limits.maxConnections,
    });
  });
}
