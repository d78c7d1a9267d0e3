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
  /**
   * Whether a line of `level` would be written: a caller that builds costly fields asks first.
   * Absent on a Logger made elsewhere (tests): then every level counts as written.
   */
  enabled?(level: Level): boolean;
}

export function createLogger(
  level: Level = (process.env.TIERFLOW_LOG_LEVEL as Level) || 'info',
  base: Record<string, unknown> = {},
  write: (line: string, level: Level) => void = defaultWrite,
): Logger {
  const min = ORDER[level] ?? ORDER.info;
  const baseKeys = Object.keys(base);
  // The base fields' members as JSON text, made once: `,"component":"sidecar"` ('' for none).
  const baseJson = baseKeys.length === 0 ? '{}' : JSON.stringify(base);
  const baseMembers = baseJson.length > 2 ? ',' + baseJson.slice(1, -1) : '';
  const joinable = !hasHeadKey(base);
  /** A field that replaces a base field: the merged object keeps the base field's place. */
  const overridesBase = (fields: Record<string, unknown>) => {
    for (const k of baseKeys) if (Object.hasOwn(fields, k)) return true;
    return false;
  };
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    // The line is the head, the base fields' JSON (made once) and the fields' own JSON joined,
    // instead of a merged copy of every field serialized again. A field named like a head key or
    // a base field goes the general way, where it wins as it always has.
    const json =
      joinable && fields !== undefined && !hasHeadKey(fields) && !overridesBase(fields)
        ? JSON.stringify(fields)
        : undefined;
    const line =
      json !== undefined && json.charCodeAt(0) === OPEN_BRACE
        ? joinFields(`{"ts":"${isoNow()}","level":"${lvl}","msg":${JSON.stringify(msg)}${baseMembers}`, json)
        : JSON.stringify({ ts: isoNow(), level: lvl, msg, ...base, ...fields });
    write(redact(line), lvl);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }, write),
    enabled: (lvl) => ORDER[lvl] >= min,
  };
}

const OPEN_BRACE = 0x7b;
const hasHeadKey = (fields: Record<string, unknown>) =>
  'ts' in fields || 'level' in fields || 'msg' in fields;

/** `head` (an unclosed JSON object) followed by the members of the JSON object `fields`. */
function joinFields(head: string, fields: string): string {
  return fields.length > 2 ? head + ',' + fields.slice(1) : head + '}';
}

// The timestamp text, made once per millisecond (many lines share one under load).
let isoMs = -1;
let isoText = '';
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
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
  enabled: () => false,
};
