// Two `tierflow serve --redis` processes (the built CLI) behind one virtual key share its
// requests-per-minute limit through a real Redis server; the official SDK sees the 429.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { model } from '../helpers/config.js';
import { findRedisServer, RedisServer } from '../helpers/redis.js';
import { type MockServer, startOpenAIMock } from '../mocks/openai-mock.js';

const bin = findRedisServer();
const VIRTUAL_KEY = 'tf-shared-team-key-0123456789';
const SYNC_MS = 50;

interface Gateway {
  child: ChildProcess;
  baseURL: string;
  output: () => string;
}

async function startGateway(configFile: string, redisUrl: string): Promise<Gateway> {
  const child = spawn(
    process.execPath,
    ['bin/tierflow.js', 'serve', '--port', '0', '--config', configFile, '--redis', redisUrl],
    {
      env: { ...process.env, TIERFLOW_LOG_LEVEL: 'info', TIERFLOW_REDIS_SYNC_MS: String(SYNC_MS) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const baseURL = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output += line + '\n';
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === 'tierflow gateway listening') resolve(entry.url!);
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${output}`)));
  });
  return { child, baseURL, output: () => output };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A config file: one OpenAI-wire provider at `baseUrl`, the `auto` policy, and the virtual key. */
function writeConfig(baseUrl: string, limits: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tierflow-shared-')), 'tierflow.yaml');
  writeFileSync(
    file,
    stringify({
      providers: [
        {
          name: 'alpha',
          type: 'openai',
          baseUrl,
          credentials: { apiKey: 'sk-upstream' },
          models: [model('alpha-mini', 'lightweight', 0.15, 0.6)],
        },
      ],
      policies: [{ name: 'default', virtualModels: ['auto'], tiers: [{ name: 'lightweight' }] }],
      virtualKeys: [{ name: 'team', key: VIRTUAL_KEY, ...limits }],
    }),
  );
  return file;
}

describe.skipIf(!bin)('virtual-key limits shared by two gateways through Redis', () => {
  let redis: RedisServer;
  let mock: MockServer;
  const gateways: Gateway[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start(bin!);
    mock = await startOpenAIMock({ apiKey: 'sk-upstream' });
    const configFile = writeConfig(mock.url, { rpm: 3, budget: { usd: 100, period: 'month' } });
    gateways.push(await startGateway(configFile, redis.url), await startGateway(configFile, redis.url));
  }, 30_000);

  afterAll(async () => {
    for (const g of gateways) if (g.child.exitCode === null) g.child.kill('SIGKILL');
    await mock?.close();
    await redis?.stop();
  });

  it('lets three requests through in all and answers the fourth with 429 on either gateway', async () => {
    // a fixed one-minute window: do not start right before it turns over
    const second = new Date().getUTCSeconds();
    if (second > 45) await sleep((61 - second) * 1000);
    const [a, b] = gateways.map(
      (g) => new OpenAI({ baseURL: g.baseURL, apiKey: VIRTUAL_KEY, maxRetries: 0 }),
    );
    const ask = (sdk: OpenAI) =>
      sdk.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'hello' }] });
    await ask(a!);
    await ask(a!);
    await sleep(SYNC_MS * 6);
    await ask(b!);
    await sleep(SYNC_MS * 6);
    for (const sdk of [a!, b!]) {
      const err = await ask(sdk).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      expect((err as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('rate_limit_exceeded');
    }
    expect(mock.requests.length).toBe(3);
  }, 90_000);

  it('reports Redis as up in its metrics, and never logs the virtual key', async () => {
    const res = await fetch(gateways[0]!.baseURL.replace(/\/v1$/, '/metrics'));
    const text = await res.text();
    expect(text).toMatch(/^tierflow_shared_state_up 1$/m);
    // per-key usage is labelled by the key's name
    expect(text).toMatch(/^tierflow_virtual_key_budget_usd\{key="team"\} 100$/m);
    const spend = /^tierflow_virtual_key_spend_usd\{key="team"\} (\S+)$/m.exec(text);
    expect(Number(spend?.[1])).toBeGreaterThan(0);
    for (const g of gateways) {
      expect(g.output()).toContain('sharing virtual-key limits through Redis');
      expect(g.output()).not.toContain(VIRTUAL_KEY);
    }
  });
});

describe.skipIf(!bin)('tierflow sidecar --redis', () => {
  it('shares limits under a per-namespace key prefix and reports Redis in its metrics', async () => {
    const redis = await RedisServer.start(bin!);
    const configFile = writeConfig('http://127.0.0.1:9/v1', { budget: { usd: 5, period: 'month' } });
    const child = spawn(
      process.execPath,
      ['bin/tierflow.js', 'sidecar', '--socket', 'none', '--port', '0', '--metrics-port', '0'],
      {
        env: {
          ...process.env,
          TIERFLOW_CONFIG: configFile,
          TIERFLOW_NAMESPACE: 'team-a',
          TIERFLOW_REDIS_URL: redis.url,
          TIERFLOW_LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const probe = new Redis(redis.url);
    try {
      const metricsPort = await new Promise<number>((resolve, reject) => {
        createInterface({ input: child.stdout! }).on('line', (line) => {
          output += line + '\n';
          const entry = JSON.parse(line) as { msg?: string; metricsPort?: number };
          if (entry.msg === 'tierflow sidecar listening') resolve(entry.metricsPort!);
        });
        child.once('exit', (code) => reject(new Error(`sidecar exited with ${code}: ${output}`)));
      });
      // on connecting, the sidecar reads every configured key: the keys appear under its namespace
      let keys: string[] = [];
      for (let i = 0; i < 100 && keys.length === 0; i++) {
        await sleep(50);
        keys = await probe.keys('tierflow:*');
      }
      expect(keys.length).toBeGreaterThan(0);
      for (const k of keys) expect(k.startsWith('tierflow:team-a:')).toBe(true);
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(text).toMatch(/^tierflow_shared_state_up 1$/m);
      expect(text).toMatch(/^tierflow_virtual_key_budget_usd\{key="team"\} 5$/m);
      expect(output).toContain('sharing virtual-key limits through Redis');
    } finally {
      probe.disconnect();
      child.kill('SIGKILL');
      await redis.stop();
    }
  }, 30_000);
});
