// Slow and idle clients are closed in bounded time and give their descriptors back; fresh
// clients are served afterwards. Timeouts are shortened here; the full-size run with the default
// limits is scripts/security-slow-clients.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleFile } from '../helpers/config.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import type { MockServer } from '../mocks/faults.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';
import { runSlowClients } from './slow-client.js';

let alpha: MockServer;
let gw: TestGateway;

beforeAll(async () => {
  alpha = await startOpenAIMock({ apiKey: 'sk-alpha-secret' });
  gw = await startTestGateway(sampleFile({ alpha: alpha.url }), {
    gateway: {
      limits: { headersTimeoutMs: 600, requestTimeoutMs: 1200, keepAliveTimeoutMs: 600, maxConnections: 60 },
    },
  });
});
afterAll(async () => {
  await gw?.close();
  await alpha?.close();
});

describe('slow clients', () => {
  it('slow headers, slow bodies and idle keep-alive connections are all closed by the server', async () => {
    const report = await runSlowClients(
      Number(new URL(gw.url).port),
      { 'slow-headers': 40, 'slow-body': 20, 'idle-keepalive': 20 }, // 80: beyond the limit of 60
      { gapMs: 150, waitMs: 20_000 },
    );
    expect(report.stillOpen).toBe(0);
    expect(report.closedByServer).toBe(80);
    // Both ends live in this process: every socket of both came back.
    if (report.fds.before >= 0) expect(report.fds.after).toBeLessThanOrEqual(report.fds.before + 5);
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'alpha-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(200);
  }, 60_000);
});
