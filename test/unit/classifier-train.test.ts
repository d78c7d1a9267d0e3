import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FEATURE_NAMES } from '../../src/core/classifier/feature-names.js';

const root = resolve(import.meta.dirname, '../..');
const script = join(root, 'scripts/train-classifier.ts');
const fixture = join(root, 'test/fixtures/routing-tiny.jsonl');
const tmp = mkdtempSync(join(tmpdir(), 'tierflow-train-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function train(args: string[], timeout = 120_000): { status: number | null; stderr: string } {
  // process.execPath is the project's Node 24 (vitest runs under it); it strips the script's types.
  const r = spawnSync(process.execPath, [script, '--quiet', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout,
  });
  return { status: r.status, stderr: r.stderr };
}

interface ModelFile {
  format: number;
  version: string;
  features: string[];
  weights: number[];
  intercept: number;
  calibration: { center: number; scale: number };
  training: { rows: Record<string, number>; outOfFold?: Record<string, { APGR: number }> };
  vocabulary: Record<string, number>;
}

const readModelRows = (path: string): Record<string, number> =>
  (JSON.parse(readFileSync(path, 'utf8')) as ModelFile).training.rows;

describe('scripts/train-classifier.ts on a tiny fixture', () => {
  const out = join(tmp, 'model.json');
  const oof = join(tmp, 'oof.jsonl');
  const loso = join(tmp, 'loso.jsonl');

  it('trains, evaluates out of fold and writes a model the product can load', () => {
    const r = train([
      '--data',
      fixture,
      '--no-aux',
      '--out',
      out,
      '--folds',
      '2',
      '--oof',
      oof,
      '--loso',
      loso,
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const m = JSON.parse(readFileSync(out, 'utf8')) as ModelFile;
    expect(m.format).toBe(2);
    expect(m.features).toEqual([...FEATURE_NAMES]);
    expect(m.weights).toHaveLength(FEATURE_NAMES.length);
    expect(
      [...m.weights, m.intercept, m.calibration.center, m.calibration.scale].every(Number.isFinite),
    ).toBe(true);
    expect(m.calibration.scale).toBeGreaterThan(0);
    expect(m.training.rows).toEqual({ chat: 20, 'word-problems': 20 });
    // The fixture plants one signal: word problems with many quantities are the hard ones.
    expect(m.weights[FEATURE_NAMES.indexOf('numbers')]!).toBeGreaterThan(0);
    expect(m.training.outOfFold!.macro!.APGR).toBeGreaterThan(0.7);
    // The vocabulary learns the same signal from the words: word-problem wording is hard, the
    // one-word trivia questions are easy; every inflection seen is listed.
    expect(m.vocabulary.many).toBeGreaterThan(0);
    expect(m.vocabulary.friends).toBe(m.vocabulary.friend);
    expect(m.vocabulary.usually).toBeLessThan(0);
    expect(m.weights[FEATURE_NAMES.indexOf('vocabulary_difficulty')]!).toBeGreaterThan(0);
  });

  it('--no-vocabulary leaves the vocabulary empty', () => {
    const plain = join(tmp, 'plain.json');
    expect(
      train(['--data', fixture, '--no-aux', '--no-vocabulary', '--out', plain, '--folds', '2']).status,
    ).toBe(0);
    const m = JSON.parse(readFileSync(plain, 'utf8')) as ModelFile;
    expect(m.vocabulary).toEqual({});
  });

  it('writes one out-of-fold and one leave-one-source-out score per labelled row', () => {
    const ids = readFileSync(fixture, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: string }).id);
    for (const file of [oof, loso]) {
      const rows = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { id: string; score: number });
      expect(rows.map((r) => r.id)).toEqual(ids);
      expect(rows.every((r) => r.score >= 0 && r.score <= 1)).toBe(true);
    }
  });

  it('is deterministic, and --check tells whether a model file is up to date', () => {
    const again = join(tmp, 'again.json');
    expect(train(['--data', fixture, '--no-aux', '--out', again, '--folds', '2']).status).toBe(0);
    expect(train(['--data', fixture, '--no-aux', '--out', out, '--folds', '2', '--check']).status).toBe(0);
    expect(readFileSync(again, 'utf8')).toBe(readFileSync(out, 'utf8'));
    writeFileSync(again, readFileSync(out, 'utf8').replace(/"version": "[^"]+"/, '"version": "0.0.0"'));
    expect(train(['--data', fixture, '--no-aux', '--out', again, '--folds', '2', '--check']).status).toBe(1);
  });

  it('--repeats logs the spread over several fold assignments and leaves the model file unchanged', () => {
    const repeated = join(tmp, 'repeated.json');
    const r = spawnSync(
      process.execPath,
      [script, '--data', fixture, '--no-aux', '--out', repeated, '--folds', '2', '--repeats', '3'],
      { cwd: root, encoding: 'utf8', timeout: 120_000 },
    );
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('mean ± sd over 3 fold assignments (seeds 1..3)');
    const macro = r.stderr
      .split('\n')
      .slice(r.stderr.split('\n').findIndex((l) => l.includes('mean ± sd')))
      .find((l) => l.trim().startsWith('macro'));
    expect(macro).toMatch(/macro\s+0\.\d{3} ±0\.\d{3}\s+\d+\.\d% ±\d+\.\d/);
    const single = join(tmp, 'single.json');
    expect(train(['--data', fixture, '--no-aux', '--out', single, '--folds', '2']).status).toBe(0);
    expect(readFileSync(repeated, 'utf8')).toBe(readFileSync(single, 'utf8'));
    expect(train(['--data', fixture, '--no-aux', '--out', single, '--repeats', '0']).status).toBe(1);
  });

  it('--bootstrap logs the spread of the leave-one-source-out figures and leaves the model file unchanged', () => {
    const resampled = join(tmp, 'resampled.json');
    const run = (seed: string): string => {
      const r = spawnSync(
        process.execPath,
        [script, '--data', fixture, '--no-aux', '--out', resampled, '--bootstrap', '50', '--seed', seed],
        { cwd: root, encoding: 'utf8', timeout: 120_000 },
      );
      expect(r.status).toBe(0);
      const lines = r.stderr.split('\n');
      const start = lines.findIndex((l) => l.includes('paired bootstrap over 50 resamples'));
      expect(start).toBeGreaterThan(-1);
      return lines.slice(start, start + 2 + Object.keys(readModelRows(resampled)).length + 1).join('\n');
    };
    const first = run('1');
    // one line per source and a macro line: APGR sd, lead over length, its sd, share lost
    const rows = first.split('\n').slice(2);
    expect(rows.at(-1)).toMatch(/^\s+macro\s+0\.\d{3}\s+[+-]\d\.\d{3}\s+0\.\d{3}\s+\d+%$/);
    for (const source of Object.keys(readModelRows(resampled)))
      expect(rows.some((l) => l.trim().startsWith(source + ' '))).toBe(true);
    // seeded: the same seed gives the same figures
    expect(run('1')).toBe(first);
    const single = join(tmp, 'single-seed1.json');
    expect(train(['--data', fixture, '--no-aux', '--out', single]).status).toBe(0);
    expect(readFileSync(resampled, 'utf8')).toBe(readFileSync(single, 'utf8'));
    expect(train(['--data', fixture, '--no-aux', '--out', single, '--bootstrap', '-1']).status).toBe(1);
  });

  it('--against compares with an earlier run on the same resamples', () => {
    const scores = join(tmp, 'earlier-loso.jsonl');
    const model = join(tmp, 'against.json');
    expect(train(['--data', fixture, '--no-aux', '--out', model, '--loso', scores]).status).toBe(0);
    const compare = (file: string): { status: number | null; stderr: string } => {
      const r = spawnSync(
        process.execPath,
        [script, '--data', fixture, '--no-aux', '--out', model, '--bootstrap', '30', '--against', file],
        { cwd: root, encoding: 'utf8', timeout: 120_000 },
      );
      return { status: r.status, stderr: r.stderr };
    };
    const same = compare(scores);
    expect(same.status).toBe(0);
    const lines = same.stderr.split('\n');
    const start = lines.findIndex((l) => l.includes('earlier-loso.jsonl, paired bootstrap'));
    expect(start).toBeGreaterThan(-1);
    // the same model again: no lead, no spread, never lower
    const macro = lines.slice(start).find((l) => l.trim().startsWith('macro'))!;
    expect(macro).toMatch(/macro\s+0\.\d{3}\s+\+0\.000\s+0\.000\s+0%$/);
    // another router (reversed scores) is measured against, not mistaken for the same one
    const reversed = join(tmp, 'reversed-loso.jsonl');
    writeFileSync(
      reversed,
      readFileSync(scores, 'utf8')
        .trim()
        .split('\n')
        .map((l) => {
          const r = JSON.parse(l) as { id: string; score: number };
          return JSON.stringify({ id: r.id, score: 1 - r.score });
        })
        .join('\n') + '\n',
    );
    const other = compare(reversed).stderr.split('\n');
    const otherMacro = other
      .slice(other.findIndex((l) => l.includes('reversed-loso.jsonl')))
      .find((l) => l.trim().startsWith('macro'))!;
    expect(otherMacro).not.toMatch(/\+0\.000\s+0\.000/);
    // every labelled row needs a score; --against needs --bootstrap
    writeFileSync(reversed, readFileSync(scores, 'utf8').split('\n').slice(1).join('\n'));
    const partial = compare(reversed);
    expect(partial.status).toBe(1);
    expect(partial.stderr).toMatch(/no score for row/);
    expect(train(['--data', fixture, '--no-aux', '--out', model, '--against', scores]).status).toBe(1);
  });

  it('fails clearly on bad input', () => {
    const missing = train(['--data', join(tmp, 'nope.jsonl'), '--out', join(tmp, 'x.json')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no data file/);
    const bad = join(tmp, 'bad.jsonl');
    writeFileSync(bad, readFileSync(fixture, 'utf8') + '{"id": broken\n');
    const r = train(['--data', bad, '--no-aux', '--out', join(tmp, 'x.json')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad\.jsonl:41:/);
    expect(train(['--data', fixture, '--folds', '1', '--out', join(tmp, 'y.json')]).status).toBe(1);
  });
});

const dev = resolve(root, '../shared/data/routing/dev.jsonl');
describe.skipIf(!existsSync(dev))('the committed model', () => {
  // --skip-eval: weights, vocabulary and calibration are retrained and compared; the recorded
  // leave-one-source-out figures (minutes of CPU) are taken as they are.
  it('is what the training script produces from the shared data sets with the current features', () => {
    const r = train(['--check', '--skip-eval'], 170_000);
    expect(r.stderr).toBe('');
    expect(r.status, 'src/core/classifier/model.json is stale: run npm run train').toBe(0);
  }, 180_000);
});
