// The secret canary on both planes: no credential, in any form, in anything a client, the log or
// a /metrics scrape sees. (Full-size run with figures: scripts/security-canary.ts.)
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  canaryConfig,
  canaryKeys,
  type Exchange,
  type Family,
  findLeaks,
  type Planes,
  resetHealth,
  runScenarios,
  startFamilies,
  startPlanes,
} from './canary.js';

const keys = canaryKeys();
let families: Family[];
let planes: Planes;
let exchanges: Exchange[];

beforeAll(async () => {
  families = await startFamilies(keys);
  planes = await startPlanes(canaryConfig(families, keys));
  exchanges = await runScenarios(families, planes, [400, 401, 403, 404, 429, 500, 503]);
}, 120_000);

afterAll(async () => {
  await planes?.close();
  await Promise.all((families ?? []).map((f) => f.mock.close()));
});

const secrets = () => [keys.openai, keys.anthropic, keys.gemini, keys.azure, keys.awsSecret, keys.awsSession];

describe('secret canary', () => {
  it('every scenario reached the provider mock on both planes', () => {
    for (const f of families) expect(f.mock.requests.length, f.name).toBeGreaterThan(20);
    expect(exchanges.filter((e) => e.plane === 'gateway').length).toBeGreaterThan(50);
    expect(exchanges.filter((e) => e.plane === 'sidecar').length).toBeGreaterThan(50);
    expect(planes.harness.violations).toEqual([]);
  });

  it('no client response (status line, headers, body) carries a credential in any form', () => {
    const leaks = findLeaks(
      exchanges.map((e) => ({ where: `${e.plane} ${e.what}`, text: e.text })),
      secrets(),
    );
    expect(leaks).toEqual([]);
  });

  it('no log line and no /metrics scrape carries one either', async () => {
    expect(planes.logs.length).toBeGreaterThan(100);
    const texts = planes.logs.map((l, i) => ({ where: `log line ${i}`, text: l }));
    texts.push({ where: '/metrics', text: await planes.metricsText() });
    expect(findLeaks(texts, secrets())).toEqual([]);
  });

  it('every error the clients got is OpenAI-shaped (JSON error objects, SSE error events)', () => {
    for (const e of exchanges) {
      if (e.body.startsWith('data:') || e.body.includes('\ndata:')) {
        const events = e.body.split('\n\n').filter((b) => b.startsWith('data: ') && b !== 'data: [DONE]');
        for (const ev of events)
          expect(() => JSON.parse(ev.slice(6)) as unknown, `${e.plane} ${e.what}: ${ev}`).not.toThrow();
        expect(
          events.some((ev) => ev.includes('"error"')),
          `${e.plane} ${e.what}`,
        ).toBe(true);
      } else {
        expect(e.status, `${e.plane} ${e.what}`).toBeGreaterThanOrEqual(400);
        const body = JSON.parse(e.body) as { error?: { message?: unknown; type?: unknown } };
        expect(typeof body.error?.message, `${e.plane} ${e.what}`).toBe('string');
        expect(typeof body.error?.type, `${e.plane} ${e.what}`).toBe('string');
      }
    }
  });

  it('the OpenAI SDK sees a malformed chunk as an APIError, not a SyntaxError', async () => {
    for (const base of [planes.gatewayUrl, planes.sidecarUrl]) {
      const sdk = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-client-placeholder', maxRetries: 0 });
      for (const f of families.filter((x) => x.name !== 'bedrock')) {
        resetHealth(planes);
        f.mock.failNext(f.streamFaults(f.secret).find((x) => JSON.stringify(x).includes('not json'))!);
        let caught: unknown;
        try {
          // Before the first token the error is the HTTP answer; after it, an in-band event.
          const stream = await sdk.chat.completions.create({
            model: f.model,
            stream: true,
            messages: [{ role: 'user', content: 'hello' }],
          });
          for await (const chunk of stream) void chunk;
        } catch (err) {
          caught = err;
        }
        expect(caught, `${base} ${f.name}`).toBeInstanceOf(OpenAI.APIError);
        expect(String((caught as Error).message)).not.toContain(f.secret.slice(-16));
      }
    }
  });
});
