// Logging for the Kubernetes components: the project's one JSON-lines logger (src/observe/log.ts).
// Callers pass names, paths and counts, never secret values (Secret objects print as [redacted]).
import { createLogger, type Level, type Logger } from '../observe/log.js';

export { silentLogger, type Logger } from '../observe/log.js';

export function jsonLogger(component: string, level?: Level): Logger {
  return createLogger(level, { component });
}

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
