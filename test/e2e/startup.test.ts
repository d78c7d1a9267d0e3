// Honest start-up: without a usable provider `tierflow serve` says which providers are disabled
// and why (no DEMO banner unless the demo provider answers), answers requests with a 404/503
// that does not contradict itself, and /readyz stays not ready until a model can be served.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { compile, model } from '../helpers/config.js';
import { type CliProcess, startCli } from '../helpers/cli-process.js';
import { startTestGateway } from '../helpers/gateway.js';
import { startupNotice } from '../../src/gateway/startup-notice.js';

const keyless = {
  providers: [
    {
      name: 'openai',
      type: 'openai',
      credentials: { apiKeyEnv: 'TIERFLOW_TEST_UNSET_KEY' },
      models: [model('gpt-x', 'lightweight', 1, 2)],
    },
    {
      name: 'aws',
      type: 'bedrock',
      credentials: { secretRef: { name: 'aws', key: 'token' } },
      models: [model('nova', 'lightweight', 1, 2)],
    },
  ],
  policies: [{ name: 'default', virtualModels: ['auto'], tiers: [{ name: 'lightweight' }] }],
};

const running: CliProcess[] = [];
afterAll(async () => {
  for (const p of running) await p.stop('SIGKILL');
});

describe('startupNotice', () => {
  it('names every disabled provider and why, and no DEMO banner', () => {
    const text = startupNotice(compile(keyless), {
      configFile: 'x.yaml',
      url: 'http://h/v1',
      demoRunning: false,
    })!;
    expect(text).toMatch(/no usable provider/);
    expect(text).toMatch(/openai \(openai\): environment variable TIERFLOW_TEST_UNSET_KEY is not set/);
    expect(text).toMatch(/aws \(bedrock\): .*aws\/token/);
    expect(text).not.toMatch(/DEMO/);
  });

  it('an empty provider list says so', () => {
    const text = startupNotice(compile({ providers: [], policies: [] }), {
      configFile: 'x.yaml',
      url: 'u',
      demoRunning: false,
    })!;
    expect(text).toMatch(/x\.yaml configures no provider/);
  });

  it('the DEMO banner only while the demo provider serves', () => {
    const withDemo = {
      ...keyless,
      providers: [
        ...keyless.providers,
        { name: 'demo', type: 'demo', models: [model('demo-mini', 'lightweight', 1, 2)] },
      ],
    };
    const config = compile(withDemo);
    expect(startupNotice(config, { configFile: 'x.yaml', url: 'http://h/v1', demoRunning: true })).toMatch(
      /DEMO mode[\s\S]*openai \(openai\): environment variable[\s\S]*"model":"auto"/,
    );
    // configured but not running (no in-process server): no banner
    expect(
      startupNotice(config, { configFile: 'x.yaml', url: 'http://h/v1', demoRunning: false }) ?? '',
    ).not.toMatch(/DEMO/);
  });

  it('says nothing when real providers serve', () => {
    const ok = compile({
      providers: [
        {
          name: 'a',
          type: 'openai',
          credentials: { apiKey: 'sk-x' },
          models: [model('m', 'lightweight', 1, 2)],
        },
      ],
      policies: [],
    });
    expect(startupNotice(ok, { configFile: 'x.yaml', url: 'u', demoRunning: false })).toBeUndefined();
  });
});

describe('a gateway with no usable provider', () => {
  it('is not ready, says why, and becomes ready when a provider can serve', async () => {
    const gw = await startTestGateway(keyless);
    try {
      const res = await fetch(`${gw.url}/readyz`);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { reason: string }).reason).toMatch(/TIERFLOW_TEST_UNSET_KEY is not set/);
      gw.writeConfig({
        ...keyless,
        providers: [{ ...keyless.providers[0], credentials: { apiKey: 'sk-now-set' } }],
      });
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 50));
        status = (await fetch(`${gw.url}/readyz`)).status;
      }
      expect(status).toBe(200);
    } finally {
      await gw.close();
    }
  });

  it('tierflow serve prints the disabled providers instead of the DEMO banner; requests get a non-contradicting error', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tierflow-start-')), 'tierflow.yaml');
    writeFileSync(file, stringify({ providers: [], policies: [] }));
    const p = await startCli(['serve', '--port', '0', '--config', file]);
    running.push(p);
    // the notice follows the "listening" log line
    for (let i = 0; i < 100 && !/Set the missing credentials/.test(p.output()); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(p.output()).toMatch(/no usable provider/);
    expect(p.output()).not.toMatch(/DEMO/);
    const res = await fetch(`${p.listening.url as string}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'Hello' }] }),
    });
    expect(res.status).toBe(404);
    const message = ((await res.json()) as { error: { message: string } }).error.message;
    expect(message).toMatch(/No provider is usable/);
    expect(message).not.toMatch(/Use 'auto'/);
    expect((await fetch((p.listening.url as string).replace(/\/v1$/, '/readyz'))).status).toBe(503);
    expect(await p.stop()).toBe(0);
  });
});
