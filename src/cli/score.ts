// tierflow score: JSONL requests on stdin -> JSONL scores on stdout, with the production classifier.
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { type Classifier, SHIPPED } from '../core/classifier/index.js';
import { readClassifierFile } from '../config/classifier-file.js';
import type { ChatCompletionRequest } from '../core/openai.js';

const USAGE = `usage: tierflow score [--reasons] [--model ROUTER.json] < requests.jsonl > scores.jsonl

Reads one JSON object per line on stdin: {"id": ..., "messages": [...]} (other chat-completions
fields such as "tools" or "response_format" are taken into account when present). Prints one
line {"id": ..., "score": ...} per input line, in the input order, using exactly the classifier
the router uses in production. Blank lines are skipped.

A line that is not valid JSON, has no "id", or has no "messages" array is reported on stderr
with its line number ("line 7: ...") and produces no output line; the other lines are still
scored, and the command exits with status 1 at the end (0 when every line was scored).

options:
  --reasons             also print the features that drove each score: {"id", "score", "reasons"}
  --model, --router F   score with a router written by \`tierflow train\` instead of the shipped model
  -h, --help            show this help
`;

export interface ScoreIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

/** Most error lines written to stderr; the rest are only counted. */
const MAX_ERROR_LINES = 100;
const FLUSH_EVERY = 256;

export async function run(argv: string[], io: ScoreIo = process): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      reasons: { type: 'boolean' },
      model: { type: 'string' },
      router: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const withReasons = values.reasons === true;
  let classifier: Classifier = SHIPPED;
  const routerFile = values.model ?? values.router;
  if (routerFile !== undefined) {
    try {
      classifier = readClassifierFile(routerFile);
    } catch (err) {
      io.stderr.write(`tierflow score: ${(err as Error).message}\n`);
      return 2;
    }
  }

  let pending: string[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const chunk = pending.join('');
    pending = [];
    if (!io.stdout.write(chunk)) await once(io.stdout, 'drain');
  };
  let lineNo = 0;
  let scored = 0;
  let errors = 0;
  const reject = (msg: string): void => {
    errors++;
    if (errors <= MAX_ERROR_LINES) io.stderr.write(`tierflow score: line ${lineNo}: ${msg}\n`);
  };

  const lines = createInterface({ input: io.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      reject(`invalid JSON (${(err as Error).message})`);
      continue;
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      reject('expected a JSON object {"id", "messages"}');
      continue;
    }
    const rec = obj as Record<string, unknown>;
    if (rec.id === undefined || rec.id === null) {
      reject('missing "id"');
      continue;
    }
    if (!Array.isArray(rec.messages)) {
      reject('missing "messages" array');
      continue;
    }
    let out: string;
    try {
      const c = classifier.classify({
        ...rec,
        model: typeof rec.model === 'string' ? rec.model : 'auto',
      } as ChatCompletionRequest);
      out = withReasons
        ? JSON.stringify({ id: rec.id, score: c.score, reasons: c.reasons })
        : JSON.stringify({ id: rec.id, score: c.score });
    } catch (err) {
      reject(`cannot score: ${(err as Error).message}`);
      continue;
    }
    pending.push(out + '\n');
    scored++;
    if (pending.length >= FLUSH_EVERY) await flush();
  }
  await flush();
  if (errors > 0) {
    if (errors > MAX_ERROR_LINES)
      io.stderr.write(`tierflow score: ... ${errors - MAX_ERROR_LINES} more rejected lines not shown\n`);
    io.stderr.write(`tierflow score: ${errors} of ${errors + scored} lines rejected\n`);
    return 1;
  }
  return 0;
}
