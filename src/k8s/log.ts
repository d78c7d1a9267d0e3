// Logging for the Kubernetes components: the project's JSON-lines logger (src/observe/log.ts).
// Callers pass names, paths and counts, never secret values (Secret objects print as [redacted]).
import { createLogger, type Level } from '../observe/log.js';

/** The subset of the project's Logger the Kubernetes code needs (any project Logger fits). */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function jsonLogger(component: string, level?: Level): Logger {
  return createLogger(level, { component });
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A short error text: the message and HTTP status, never a response body (it may echo a request). */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code =
      (err as { code?: unknown; statusCode?: unknown }).code ?? (err as { statusCode?: unknown }).statusCode;
    const first = err.message.split('\n')[0] ?? '';
    return typeof code === 'number' ? `HTTP ${code}: ${first.slice(0, 200)}` : first.slice(0, 300);
  }
  return String(err).slice(0, 300);
}
