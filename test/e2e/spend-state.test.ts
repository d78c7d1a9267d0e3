// Spend that survives a restart without Redis: the built `tierflow serve` keeps virtual-key spend
// in a state file (flushed on SIGTERM, on a short timer otherwise), and a sidecar without Redis
// warns that its budgets are kept in memory only.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { sha256Hex } from '../../src/core/config/compile.js';
import { model } from '../helpers/config.js';
import { type CliProcess, startCli } from '../helpers/cli-process.js';
import { type MockServer, startOpenAIMock } from '../mocks/openai-mock.js';

const SPENT = 'tf-spend-one-0123456789';
const KILLED = 'tf-spend-two-0123456789';

let mock: MockServer;
let dir: string;
let configFile: string;
let stateFile: string;
const running: CliProcess[] = [];

beforeAll(async () => {
  mock = await startOpenAIMock({ apiKey: 'sk-upstream' });
  mock.setResponse({ content: 'hi', usage: { prompt: 10, completion: 2 } });
  dir = mkdtempSync(join(tmpdir(), 'tierflow-spend-'));
  configFile = join(dir, 'tierflow.yaml');
  stateFile = join(dir, 'state', 'spend.json');
  writeFileSync(
    configFile,
    stringify({
      providers: [
        {
          name: 'alpha',
          type: 'openai',
          baseUrl: mock.url,
          credentials: { apiKey: 'sk-upstream' },
          // 0.1 USD per token: one answer of 12 tokens costs 1.2 USD
          models: [model('alpha-mini', 'lightweight', 100_000, 100_000)],
        },
      ],
      policies: [{ name: 'default', virtualModels: ['auto'], tiers: [{ name: 'lightweight' }] }],
      virtualKeys: [
        { name: 'one', key: SPENT, budget: { usd: 1, period: 'month' } },
        { name: 'two', key: KILLED, budget: { usd: 5, period: 'month' } },
      ],
    }),
  );
  mkdirSync(join(dir, 'state'));
});

afterAll(async () => {
  for (const p of running) await p.stop('SIGKILL');
  await mock?.close();
});

async function serve(): Promise<{ p: CliProcess; sdk: (key: string) => OpenAI }> {
  const p = await startCli(['serve', '--port', '0', '--config', configFile, '--state-file', stateFile], {
    TIERFLOW_STATE_FLUSH_MS: '50',
  });
  running.push(p);
  const baseURL = p.listening.url as string;
  return { p, sdk: (key) => new OpenAI({ baseURL, apiKey: key, maxRetries: 0 }) };
}

const hi = { model: 'auto', messages: [{ role: 'user' as const, content: 'Hi' }] };

function savedSpend(key: string): number | undefined {
  if (!existsSync(stateFile)) return undefined;
  const data = JSON.parse(readFileSync(stateFile, 'utf8')) as {
    keys: { keyHash: string; spentUsd: number }[];
  };
  return data.keys.find((k) => k.keyHash === sha256Hex(key))?.spentUsd;
}

describe('tierflow serve without Redis keeps spend in a state file', () => {
  it('a key over its budget stays refused after SIGTERM and a restart', async () => {
    const first = await serve();
    await first.sdk(SPENT).chat.completions.create(hi); // 1.2 USD of a 1 USD budget
    expect(await first.p.stop('SIGTERM')).toBe(0);
    expect(savedSpend(SPENT)).toBeCloseTo(1.2, 6);
    // the file holds key hashes, never a key
    expect(readFileSync(stateFile, 'utf8')).not.toContain(SPENT);

    const second = await serve();
    expect(second.p.output()).toContain('virtual-key spend restored');
    const err = await second
      .sdk(SPENT)
      .chat.completions.create(hi)
      .then(
        () => undefined,
        (e: unknown) => e as InstanceType<typeof OpenAI.RateLimitError>,
      );
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err!.code).toBe('budget_exceeded');
    await second.p.stop('SIGTERM');
  });

  it('after SIGKILL, the spend written before the kill is kept', async () => {
    const first = await serve();
    await first.sdk(KILLED).chat.completions.create(hi);
    // the timer writes within TIERFLOW_STATE_FLUSH_MS; wait for it rather than for a fixed time
    for (let i = 0; i < 200 && savedSpend(KILLED) === undefined; i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(savedSpend(KILLED)).toBeCloseTo(1.2, 6);
    await first.p.stop('SIGKILL');

    const second = await serve();
    const { response } = await second.sdk(KILLED).chat.completions.create(hi).withResponse();
    expect(Number(response.headers.get('x-tierflow-budget-remaining-usd'))).toBeCloseTo(3.8, 6);
    await second.p.stop('SIGTERM');
    expect(savedSpend(KILLED)).toBeCloseTo(2.4, 6);
  });
});

describe('tierflow sidecar without Redis', () => {
  it('warns that budgets are kept in memory only', async () => {
    const p = await startCli(['sidecar', '--socket', 'none', '--port', '0'], { TIERFLOW_CONFIG: configFile });
    running.push(p);
    expect(p.output()).toMatch(/"level":"warn".*budgets are kept in this process only.*--redis/);
    await p.stop('SIGTERM');
  });
});
