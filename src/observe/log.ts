// JSON lines on stdout (errors on stderr), one object per event. Never pass secrets in fields;
// every line still goes through `redact` (src/core/redact.ts) on its way out, as a safety net.
import { redact } from '../core/redact.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(
  level: Level = (process.env.TIERFLOW_LOG_LEVEL as Level) || 'info',
  base: Record<string, unknown> = {},
  write: (line: string, level: Level) => void = defaultWrite,
): Logger {
  const min = ORDER[level] ?? ORDER.info;
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    write(redact(JSON.stringify({ ts: new Date().toISOString(), level: lvl, msg, ...base, ...fields })), lvl);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }, write),
  };
}

function defaultWrite(line: string, level: Level): void {
  (level === 'error' ? process.stderr : process.stdout).write(line + '\n');
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
