// `tierflow train` end to end: outcomes file -> router file -> score --model, a policy's
// classifier.modelFile, and hot reload when the router file changes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { run as score } from '../../src/cli/score.js';
import { run as train } from '../../src/cli/train.js';
import { loadConfigFile } from '../../src/config/load.js';
import type { CompiledConfig } from '../../src/core/config/compiled.js';
import { SHIPPED } from '../../src/core/classifier/index.js';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { silentLogger } from '../../src/observe/log.js';
import { openFileConfig } from '../../src/runtime/file-config.js';
import { plantedOutcomes } from '../helpers/outcomes.js';

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'tierflow-train-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const outcomesFile = join(dir, 'outcomes.jsonl');
writeFileSync(
  outcomesFile,
  plantedOutcomes(240)
    .map((o) =>
      JSON.stringify({
        id: o.id,
        messages: o.request.messages,
        lightweight_score: o.lightweight,
        flagship_score: o.flagship,
      }),
    )
    .join('\n') + '\n',
);
const routerFile = join(dir, 'my-router.json');

async function cli(run: typeof train, argv: string[]) {
  const stdout = new Sink();
  const stderr = new Sink();
  const code = await run(argv, { stdout, stderr });
  return { code, out: stdout.text, err: stderr.text };
}

const TRANSLATION = 'Translate into Korean: "Please send the tickets by 5 pm."';
const CONFIG = (modelFile: string) => `
providers:
  - name: alpha
    type: openai
    baseUrl: http://127.0.0.1:9/v1
    credentials: {apiKey: sk-test}
    models:
      - {name: alpha-mini, tier: lightweight, pricing: {inputPerMTok: 0.15, outputPerMTok: 0.6}, contextWindow: 128000, maxOutputTokens: 16000}
      - {name: alpha-large, tier: flagship, pricing: {inputPerMTok: 2.5, outputPerMTok: 10}, contextWindow: 128000, maxOutputTokens: 16000}
policies:
  - name: default
    virtualModels: [auto]
    classifier: {modelFile: ${modelFile}}
    tiers:
      - {name: lightweight, maxScore: 0.5}
      - {name: flagship}
`;

describe('tierflow train', () => {
  it('fits, writes the router and prints a cross-validated report with thresholds', async () => {
    const r = await cli(train, ['--data', outcomesFile, '--out', routerFile, '--flagship-share', '0.3']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/240 outcomes/);
    expect(r.out).toMatch(/this router \(5-fold, nested\)\s+0\.\d{3}/);
    expect(r.out).toMatch(/shipped model 3\.\d+\.\d+\s+0\.\d{3}/);
    expect(r.out).toMatch(/prompt length\s+0\.\d{3}/);
    expect(r.out).toMatch(/flagship share\s+30\.0%: maxScore 0\.\d{4}/);
    expect(r.out).toMatch(/ranks your traffic better than the shipped model/);
    const model = JSON.parse(readFileSync(routerFile, 'utf8')) as {
      base: unknown;
      training: { rows: number };
    };
    expect(model.base).toEqual(SHIPPED.info);
    expect(model.training.rows).toBe(240);
  });

  it('names the bad lines of an outcomes file and writes nothing', async () => {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(
      bad,
      readFileSync(outcomesFile, 'utf8') + '{"messages": [], "flagship_score": 2}\nnot json\n',
    );
    const out = join(dir, 'never.json');
    const r = await cli(train, ['--data', bad, '--out', out]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad\.jsonl:241: needs "lightweight_score" and "flagship_score"/);
    expect(r.err).toMatch(/bad\.jsonl:242: invalid JSON/);
    expect(() => readFileSync(out)).toThrow();
    expect((await cli(train, ['--data', outcomesFile])).code).toBe(2);
  });

  it('score --model scores with the fitted router', async () => {
    const input = JSON.stringify({ id: 1, messages: [{ role: 'user', content: TRANSLATION }] }) + '\n';
    const run = async (argv: string[]) => {
      const stdin = new PassThrough();
      const stdout = new Sink();
      stdin.end(input);
      const code = await score(argv, { stdin, stdout, stderr: new Sink() });
      return { code, score: (JSON.parse(stdout.text) as { score: number }).score };
    };
    const shipped = await run([]);
    const custom = await run(['--model', routerFile]);
    expect(shipped.code).toBe(0);
    expect(custom.code).toBe(0);
    expect(shipped.score).toBeLessThan(0.5);
    expect(custom.score).toBeGreaterThan(0.5);
    const stderr = new Sink();
    const missing = await score(['--model', join(dir, 'nope.json')], {
      stdin: new PassThrough(),
      stdout: new Sink(),
      stderr,
    });
    expect(missing).toBe(2);
    expect(stderr.text).toMatch(/cannot read .*nope\.json: ENOENT/);
  });
});

describe('a policy with classifier.modelFile', () => {
  const plan = (config: CompiledConfig) =>
    new Router({ config, health: new HealthRegistry() }).plan({
      body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: TRANSLATION }] }),
    });

  it('routes with the fitted router (path relative to the config file)', () => {
    const file = join(dir, 'tierflow.yaml');
    writeFileSync(file, CONFIG('my-router.json'));
    const loaded = loadConfigFile(file, { env: {} });
    expect(loaded.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(loaded.files).toEqual([routerFile]);
    const p = plan(loaded.config!);
    expect(p.tier).toBe('flagship');
    expect(p.score).toBeGreaterThan(0.5);
  });

  it('is a config error when the file is missing or not a router', () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, CONFIG('missing.json'));
    const missing = loadConfigFile(file, { env: {} });
    expect(missing.config).toBeUndefined();
    expect(missing.issues).toContainEqual(
      expect.objectContaining({ path: '/policies/0/classifier/modelFile', severity: 'error' }),
    );
    writeFileSync(join(dir, 'not-a-router.json'), '{"format": 1}');
    writeFileSync(file, CONFIG('not-a-router.json'));
    expect(loadConfigFile(file, { env: {} }).issues[0]!.message).toMatch(/unsupported format 1/);
  });

  it('refuses a ConfigMap reference (Kubernetes only), and both or neither of the two', () => {
    const file = join(dir, 'configmap.yaml');
    const errors = (classifier: string) => {
      writeFileSync(file, CONFIG('my-router.json').replace(/classifier: .*$/m, `classifier: ${classifier}`));
      const loaded = loadConfigFile(file, { env: {} });
      expect(loaded.config).toBeUndefined();
      return loaded.issues.filter((i) => i.severity === 'error');
    };
    expect(errors('{configMapRef: {name: my-router}}')).toEqual([
      expect.objectContaining({
        path: '/policies/0/classifier/configMapRef',
        message: expect.stringMatching(
          /works in a RoutingPolicy only; the standalone file config takes classifier\.modelFile/,
        ),
      }),
    ]);
    expect(errors('{modelFile: my-router.json, configMapRef: {name: my-router}}')).toEqual([
      expect.objectContaining({ path: '/policies/0/classifier', message: expect.stringMatching(/not both/) }),
    ]);
    expect(errors('{}')).toEqual([
      expect.objectContaining({
        path: '/policies/0/classifier',
        message: expect.stringMatching(/needs modelFile/),
      }),
    ]);
  });

  it('reloads when the router file changes', async () => {
    const liveRouter = join(dir, 'live-router.json');
    writeFileSync(liveRouter, readFileSync(routerFile));
    const file = join(dir, 'live.yaml');
    writeFileSync(file, CONFIG('live-router.json'));
    const applied: CompiledConfig[] = [];
    const source = openFileConfig(file, { env: {} }, silentLogger, (c) => applied.push(c));
    try {
      expect(plan(source.initial).tier).toBe('flagship');
      // A router that sends everything the other way: the same file with its weights negated.
      const m = JSON.parse(readFileSync(routerFile, 'utf8')) as {
        weights: number[];
        intercept: number;
        calibration: { center: number };
      };
      m.weights = m.weights.map((w) => -w);
      m.intercept = -m.intercept;
      m.calibration.center = -m.calibration.center;
      writeFileSync(liveRouter, JSON.stringify(m));
      await vi.waitFor(() => expect(applied.length).toBeGreaterThan(0), { timeout: 8000, interval: 50 });
      expect(plan(applied.at(-1)!).tier).toBe('lightweight');
    } finally {
      source.close();
    }
  });
});

describe('tierflow explain with a fitted router', () => {
  // The built CLI, as a user runs it.
  const explain = (args: string[]) => {
    const r = spawnSync(process.execPath, ['bin/tierflow.js', 'explain', '--json', ...args, TRANSLATION], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout) as { score: number; model: { name: string }; decision: { tier: string } };
  };

  it("uses the policy's router, or the one given with --router, else the shipped model", () => {
    const withPolicy = join(dir, 'explain.yaml');
    writeFileSync(withPolicy, CONFIG('my-router.json'));
    const plain = join(dir, 'plain.yaml');
    writeFileSync(plain, CONFIG('my-router.json').replace(/^ {4}classifier: .*$/m, ''));
    const viaPolicy = explain(['-c', withPolicy]);
    expect(viaPolicy.model.name).toBe('tierflow-complexity-custom');
    expect(viaPolicy.decision.tier).toBe('flagship');
    const viaFlag = explain(['-c', plain, '--router', routerFile]);
    expect(viaFlag.score).toBe(viaPolicy.score);
    const shipped = explain(['-c', plain]);
    expect(shipped.model.name).toBe(SHIPPED.info.name);
    expect(shipped.decision.tier).toBe('lightweight');
  });
});
