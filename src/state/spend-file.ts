// Virtual-key spend kept across restarts of a gateway that runs without Redis: a small JSON file,
// written when spend changed (at most every `intervalMs`) and once more at shutdown. Each write
// goes to a temporary file that is flushed to disk and renamed over the old one, so a crash
// leaves either the previous or the new file, never a torn one. What a SIGKILL can lose is the
// spend of the requests that finished since the last write (at most `intervalMs` of traffic).
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { BudgetPeriod, KeyLimits, SpendEntry } from '../core/limits.js';
import type { Logger } from '../observe/log.js';

export const DEFAULT_FLUSH_MS = 1000;
const VERSION = 1;

interface FileShape {
  version: number;
  savedAt: string;
  /** Per key (sha256 of the key, never the key itself): spend of its current budget period. */
  keys: SpendEntry[];
}

export class SpendFile {
  readonly #limits: KeyLimits;
  readonly #log: Logger;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #written = '';
  #writing: Promise<void> | undefined;
  #warned = new Set<string>();

  constructor(
    readonly path: string,
    limits: KeyLimits,
    log: Logger,
    intervalMs = DEFAULT_FLUSH_MS,
  ) {
    this.#limits = limits;
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  /** Reads what an earlier run saved into the limits; returns how many keys had spend. */
  async load(): Promise<number> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#warn('cannot read', err);
      return 0;
    }
    const entries = parse(text);
    if (!entries) {
      this.#log.warn('spend state file is not valid; starting without it', { path: this.path });
      return 0;
    }
    this.#limits.restoreSpend(entries);
    this.#written = text;
    return entries.length;
  }

  start(): void {
    this.#timer = setInterval(() => void this.flush(), this.#intervalMs);
    this.#timer.unref();
  }

  /** Writes the current spend when it changed since the last write. */
  flush(): Promise<void> {
    this.#writing ??= this.#write().finally(() => (this.#writing = undefined));
    return this.#writing;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#writing;
    await this.flush();
  }

  async #write(): Promise<void> {
    const keys = this.#limits.spendSnapshot();
    if (keys.length === 0 && this.#written === '') return;
    const body = JSON.stringify({ version: VERSION, keys });
    if (body === this.#written) return;
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      const file = await open(tmp, 'w', 0o600);
      try {
        await file.writeFile(body);
        await file.datasync();
      } finally {
        await file.close();
      }
      await rename(tmp, this.path);
      await syncDirectory(dirname(this.path));
      this.#written = body;
    } catch (err) {
      this.#warn('cannot write', err);
      await unlink(tmp).catch(() => undefined);
    }
  }

  #warn(what: string, err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (this.#warned.has(`${what}:${code}`)) return;
    this.#warned.add(`${what}:${code}`);
    this.#log.warn(`${what} the spend state file; virtual-key spend will not survive a restart`, {
      path: this.path,
      error: code,
      hint: 'point --state-file (TIERFLOW_STATE_FILE) at a writable path, or use --redis',
    });
  }
}

/** The rename is durable only once the directory entry is on disk too. */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* some file systems refuse fsync on a directory: the rename itself is still atomic */
  }
}

function parse(text: string): SpendEntry[] | undefined {
  let data: Partial<FileShape>;
  try {
    data = JSON.parse(text) as Partial<FileShape>;
  } catch {
    return undefined;
  }
  if (data?.version !== VERSION || !Array.isArray(data.keys)) return undefined;
  const out: SpendEntry[] = [];
  for (const e of data.keys as Partial<SpendEntry>[]) {
    if (
      typeof e?.keyHash !== 'string' ||
      !/^[0-9a-f]{64}$/.test(e.keyHash) ||
      typeof e.period !== 'string' ||
      !isPeriod(e.periodKind) ||
      typeof e.spentUsd !== 'number' ||
      !Number.isFinite(e.spentUsd)
    ) {
      return undefined;
    }
    out.push({ keyHash: e.keyHash, period: e.period, periodKind: e.periodKind, spentUsd: e.spentUsd });
  }
  return out;
}

function isPeriod(v: unknown): v is BudgetPeriod {
  return v === 'day' || v === 'month';
}
