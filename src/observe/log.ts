// JSON lines on stdout (errors on stderr), one object per event. Never pass secrets in fields;
// every line still goes through `redact` (src/core/redact.ts) on its way out, as a safety net.
import { writeSync } from 'node:fs';
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

// stdout lines are batched: one write for every line logged within FLUSH_MS, instead of one
// system call per request on the request path (stdout to a pipe or file is synchronous). They
// leave at the latest FLUSH_MS after the first of them, at once beyond BATCH_BYTES, and
// synchronously when the process exits (normally, by process.exit or an uncaught exception);
// only a SIGKILL can lose the last lines. Errors go to stderr at once.
const BATCH_BYTES = 64 * 1024;
const FLUSH_MS = 20;
let batch = '';
let scheduled = false;
let exitHook = false;

function flushBatch(): void {
  scheduled = false;
  if (batch === '') return;
  const text = batch;
  batch = '';
  process.stdout.write(text);
}

function defaultWrite(line: string, level: Level): void {
  if (level === 'error') {
    process.stderr.write(line + '\n');
    return;
  }
  batch += line + '\n';
  if (batch.length >= BATCH_BYTES) return flushBatch();
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      if (batch === '') return;
      try {
        writeSync(1, batch);
      } catch {
        /* stdout already gone */
      }
      batch = '';
    });
  }
  if (!scheduled) {
    scheduled = true;
    setTimeout(flushBatch, FLUSH_MS).unref();
  }
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
