// A configuration that compiles but can serve nothing (`providers: []`, `policies: []`, every
// key missing) is refused by validation and by hot reload, with a log line that says why; the
// last good configuration keeps serving.
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadServableConfigFile } from '../../src/config/load.js';
import { createLogger } from '../../src/observe/log.js';
import { sampleFile } from '../helpers/config.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import type { MockServer } from '../mocks/faults.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';

const good = (url: string) => sampleFile({ alpha: url, beta: url });
const unservable: [string, (url: string) => unknown][] = [
  ['providers: []', () => ({ providers: [], policies: [] })],
  ['policies: []', (url) => ({ ...good(url), policies: [] })],
  [
    'every key missing',
    (url) => ({
      ...good(url),
      providers: good(url).providers.map((p) => ({ ...p, credentials: { apiKeyEnv: 'NOT_SET_ANYWHERE' } })),
    }),
  ],
];

describe('validation', () => {
  it('refuses configs that leave no servable model, with the reason', () => {
    for (const [name, make] of unservable) {
      const file = join(mkdtempSync(join(tmpdir(), 'tierflow-unservable-')), 'tierflow.yaml');
      writeFileSync(file, stringify(make('http://127.0.0.1:9/v1')));
      const r = loadServableConfigFile(file, { env: {} });
      expect(r.config, name).toBeUndefined();
      expect(r.issues.map((i) => `${i.severity} ${i.message}`).join('\n'), name).toMatch(
        /^error .*(no provider|no routing policy)/m,
      );
    }
    const file = join(mkdtempSync(join(tmpdir(), 'tierflow-servable-')), 'tierflow.yaml');
    writeFileSync(file, stringify(good('http://127.0.0.1:9/v1')));
    expect(loadServableConfigFile(file, { env: {} }).config).toBeDefined();
  });
});

describe('hot reload', () => {
  let mock: MockServer;
  let gw: TestGateway;
  const lines: string[] = [];
  beforeAll(async () => {
    mock = await startOpenAIMock();
    gw = await startTestGateway(good(mock.url), { log: createLogger('info', {}, (l) => lines.push(l)) });
  });
  afterAll(async () => {
    await gw?.close();
    await mock?.close();
  });

  it('keeps the last good config serving and logs why the new one was refused', async () => {
    for (const [name, make] of unservable) {
      const before = lines.length;
      gw.writeConfig(make(mock.url));
      for (let i = 0; i < 100 && !lines.slice(before).some((l) => l.includes('config reload rejected')); i++)
        await new Promise((r) => setTimeout(r, 50));
      const rejected = lines.slice(before).find((l) => l.includes('config reload rejected'));
      expect(rejected, name).toMatch(/no provider has a usable model|no routing policy has a usable model/);
      const res = await fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(res.status, name).toBe(200);
    }
  });
});
