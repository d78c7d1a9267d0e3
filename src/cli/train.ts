// tierflow train: fit a router to your own labelled outcomes and report how it routes, honestly.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  fitRouter,
  type FitMode,
  type FitReport,
  type Outcome,
  type RouteMetrics,
} from '../core/classifier/fit.js';
import { SHIPPED } from '../core/classifier/index.js';
import type { ChatCompletionRequest } from '../core/openai.js';

const USAGE = `usage: tierflow train --data OUTCOMES.jsonl --out MY-ROUTER.json [options]

Fits a router to your own traffic: one JSON object per line, a chat-completions request plus the
score of the lightweight model's and of the flagship's answer to it (from your evals, an A/B log
or a judge), each in [0, 1]:

  {"id": "r1", "messages": [...], "lightweight_score": 0, "flagship_score": 1}

("weak_score" / "strong_score" are accepted too; "id" defaults to the line number). Prints a
cross-validated report against the shipped model and prompt length, and the maxScore to set for
a wanted flagship share. Point a policy at the written file with classifier: {modelFile: ...}.

options:
  -d, --data FILE            the outcomes (JSONL)
  -o, --out FILE             where to write the router (JSON)
      --mode MODE            auto (default) | shipped | scratch: fit on top of the shipped model,
                             or from the features alone (needs 2000 outcomes); auto picks by
                             cross-validation
      --folds K              outer cross-validation folds (default 5)
      --flagship-share S     report the threshold for this share (0 < S < 1; repeatable;
                             default 0.1 to 0.5)
      --json                 print the report as JSON
  -h, --help                 show this help
`;

export interface TrainIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

export async function run(argv: string[], io: TrainIo = process): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string', short: 'd' },
      out: { type: 'string', short: 'o' },
      mode: { type: 'string' },
      folds: { type: 'string' },
      'flagship-share': { type: 'string', multiple: true },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const fail = (msg: string, code = 2): number => {
    io.stderr.write(`tierflow train: ${msg}\n`);
    return code;
  };
  if (!values.data || !values.out) return fail(`--data and --out are required\n\n${USAGE}`);
  const mode = values.mode ?? 'auto';
  if (mode !== 'auto' && mode !== 'shipped' && mode !== 'scratch')
    return fail('--mode must be auto, shipped or scratch');
  const folds = values.folds === undefined ? 5 : Number(values.folds);
  const shares = (values['flagship-share'] ?? []).map(Number);
  if (shares.some((s) => !(s > 0 && s < 1))) return fail('--flagship-share must be between 0 and 1');

  let text: string;
  try {
    text = readFileSync(values.data, 'utf8');
  } catch (err) {
    return fail(
      `cannot read ${values.data}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      1,
    );
  }
  const parsed = parseOutcomes(text);
  if (parsed.errors.length > 0) {
    for (const e of parsed.errors.slice(0, 20)) io.stderr.write(`tierflow train: ${values.data}:${e}\n`);
    return fail(`${parsed.errors.length} line(s) rejected; fix them and run again`, 1);
  }
  let result;
  try {
    result = fitRouter(parsed.rows, SHIPPED, {
      mode: mode as FitMode | 'auto',
      folds,
      ...(shares.length ? { shares } : {}),
    });
  } catch (err) {
    return fail((err as Error).message, 1);
  }
  writeFileSync(values.out, JSON.stringify(result.model, null, 2) + '\n');
  io.stdout.write(
    values.json ? JSON.stringify(result.report) + '\n' : formatReport(result.report, values.out),
  );
  return 0;
}

/** Outcome rows of a JSONL text; errors are "LINE: message". */
export function parseOutcomes(text: string): { rows: Outcome[]; errors: string[] } {
  const rows: Outcome[] = [];
  const errors: string[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((line, k) => {
    if (!line.trim()) return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch (err) {
      errors.push(`${k + 1}: invalid JSON (${(err as Error).message})`);
      return;
    }
    if (!o || typeof o !== 'object' || Array.isArray(o)) {
      errors.push(`${k + 1}: expected a JSON object`);
      return;
    }
    if (!Array.isArray(o.messages)) {
      errors.push(`${k + 1}: missing "messages" array`);
      return;
    }
    const flagship = Number(o.flagship_score ?? o.strong_score);
    const lightweight = Number(o.lightweight_score ?? o.weak_score);
    if (!(flagship >= 0 && flagship <= 1) || !(lightweight >= 0 && lightweight <= 1)) {
      errors.push(`${k + 1}: needs "lightweight_score" and "flagship_score" between 0 and 1`);
      return;
    }
    const id = o.id === undefined || o.id === null ? String(k + 1) : String(o.id);
    if (seen.has(id)) {
      errors.push(`${k + 1}: duplicate id ${JSON.stringify(id)}`);
      return;
    }
    seen.add(id);
    const request = { ...o, model: 'auto' } as unknown as ChatCompletionRequest;
    rows.push({ id, request, flagship, lightweight });
  });
  return { rows, errors };
}

function formatReport(r: FitReport, out: string): string {
  const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '-');
  const line = (name: string, m: RouteMetrics): string =>
    `  ${name.padEnd(30)} ${m.APGR.toFixed(3)}  ${pct(m.CPT50).padStart(6)}  ${pct(m.CPT80).padStart(6)}\n`;
  const how =
    r.mode === 'shipped'
      ? 'on top of the shipped model'
      : 'from the features alone (the shipped vocabulary kept)';
  let s =
    `${r.rows} outcomes: lightweight ${r.crossValidated.lightweight.toFixed(3)}, flagship ${r.crossValidated.flagship.toFixed(3)} mean score\n` +
    `fitted ${how}, regularisation ${r.lambda}\n\n` +
    `routing quality on these outcomes    APGR   CPT50   CPT80   (0.5 = random; CPT50: flagship share for half the gap)\n` +
    line(`this router (${r.folds}-fold, nested)`, r.crossValidated) +
    line(`shipped model ${SHIPPED.info.version}`, r.shipped) +
    line('prompt length', r.promptLength);
  s += `\nthresholds for the tier below the flagship (set its maxScore):\n`;
  for (const t of r.thresholds) {
    s += `  flagship share ${pct(t.share).padStart(5)}: maxScore ${t.maxScore.toFixed(4)}  (recovers ${pct(t.gapRecovered)} of the quality gap, out of fold)\n`;
  }
  const verdict =
    r.crossValidated.APGR > r.shipped.APGR
      ? `this router ranks your traffic better than the shipped model (+${(r.crossValidated.APGR - r.shipped.APGR).toFixed(3)} APGR)`
      : 'this router does not beat the shipped model on your traffic; keep the shipped model or collect more outcomes';
  s += `\n${verdict}\nwrote ${out}\n`;
  return s;
}
