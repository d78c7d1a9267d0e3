// The gateway against clients that do not play by the rules: wrong content types, requests
// Node's parser refuses, slow senders, idle connections, too many connections, a /metrics
// scrape without its token, and local resource exhaustion that must not hurt a provider.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../src/core/secret.js';
import type { UpstreamClient } from '../../src/pipeline/client.js';
import { sampleFile } from '../helpers/config.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { rawExchange } from '../helpers/raw-http.js';
import type { MockServer } from '../mocks/faults.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';

const CHAT = JSON.stringify({ model: 'alpha-mini', messages: [{ role: 'user', content: 'hi' }] });
const post = (contentType: string | undefined, body = CHAT) =>
  `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n${contentType ? `content-type: ${contentType}\r\n` : ''}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;

function expectOpenAIError(body: string, code?: string) {
  const parsed = JSON.parse(body) as { error: { message: string; type: string; code: string | null } };
  expect(typeof parsed.error.message).toBe('string');
  expect(typeof parsed.error.type).toBe('string');
  if (code) expect(parsed.error.code).toBe(code);
}

let alpha: MockServer;
let gw: TestGateway;
let port: number;

beforeAll(async () => {
  alpha = await startOpenAIMock({ apiKey: 'sk-alpha-secret' });
  gw = await startTestGateway(sampleFile({ alpha: alpha.url }), {
    gateway: {
      limits: { headersTimeoutMs: 400, requestTimeoutMs: 800, keepAliveTimeoutMs: 300, maxConnections: 8 },
      metricsToken: new Secret('metrics-token-for-tests'),
    },
  });
  port = Number(new URL(gw.url).port);
});
afterAll(async () => {
  await gw?.close();
  await alpha?.close();
});

describe('gateway against hostile HTTP', () => {
  it('refuses bodies declared as anything but JSON with a clear 415; JSON and no type pass', async () => {
    for (const type of [
      'text/plain',
      'image/png',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      const res = await rawExchange(port, post(type));
      expect(res.status, type).toBe(415);
      expectOpenAIError(res.body, 'unsupported_media_type');
      expect(JSON.parse(res.body).error.message).toContain('application/json');
    }
    for (const type of [
      'application/json',
      'application/json; charset=utf-8',
      'Application/JSON',
      undefined,
    ]) {
      expect((await rawExchange(port, post(type))).status, String(type)).toBe(200);
    }
  });

  it("answers Node's own parser rejections with OpenAI-shaped bodies", async () => {
    const cases: [string, string, number][] = [
      ['garbage request line', 'NOT HTTP AT ALL\r\n\r\n', 400],
      ['bad header name', 'GET /v1/models HTTP/1.1\r\nhost: x\r\nbad header: 1\r\n\r\n', 400],
      [
        'header injection (bare CR)',
        'GET /v1/models HTTP/1.1\r\nhost: x\r\nx-a: 1\rinjected: 2\r\n\r\n',
        400,
      ],
      [
        'both content-length and chunked',
        'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
        400,
      ],
      [
        'broken chunk size',
        'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
        400,
      ],
      [
        'oversized headers',
        `GET /v1/models HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(40_000)}\r\n\r\n`,
        431,
      ],
    ];
    for (const [name, bytes, status] of cases) {
      const res = await rawExchange(port, bytes);
      expect(res.status, name).toBe(status);
      expectOpenAIError(res.body);
      expect(res.closedByServer, name).toBe(true);
    }
  });

  it('times out slow headers and slow bodies with a 408 and closes the connection', async () => {
    const slowHeaders = await rawExchange(
      port,
      ['POST /v1/chat/completions HTTP/1.1\r\n', 'host: x\r\n', 'x-a: 1\r\n', 'x-b: 2\r\n'],
      {
        gapMs: 300,
        waitMs: 10_000,
      },
    );
    expect(slowHeaders.status).toBe(408);
    expectOpenAIError(slowHeaders.body, 'request_timeout');
    expect(slowHeaders.closedByServer).toBe(true);

    const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${CHAT.length}\r\n\r\n`;
    const slowBody = await rawExchange(port, [head, ...CHAT.slice(0, 20).split('')], {
      gapMs: 200,
      waitMs: 10_000,
    });
    expect(slowBody.closedByServer).toBe(true);
    expect([0, 408]).toContain(slowBody.status);
    if (slowBody.status) expectOpenAIError(slowBody.body);
  });

  it('closes idle keep-alive connections', async () => {
    const res = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n', { waitMs: 10_000 });
    expect(res.status).toBe(200);
    expect(res.closedByServer).toBe(true);
  });

  it('/metrics requires the bearer token when one is configured; probes stay open', async () => {
    const without = await fetch(`${gw.url}/metrics`);
    expect(without.status).toBe(401);
    expect(without.headers.get('www-authenticate')).toBe('Bearer');
    expectOpenAIError(await without.text(), 'invalid_metrics_token');
    const wrong = await fetch(`${gw.url}/metrics`, {
      headers: { authorization: 'Bearer metrics-token-for-testz' },
    });
    expect(wrong.status).toBe(401);
    const right = await fetch(`${gw.url}/metrics`, {
      headers: { authorization: 'Bearer metrics-token-for-tests' },
    });
    expect(right.status).toBe(200);
    expect(await right.text()).toContain('tierflow_');
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });
  it('refuses connections beyond the limit and keeps serving the ones it has', async () => {
    const { connect } = await import('node:net');
    const idle = await Promise.all(
      Array.from(
        { length: 8 },
        () =>
          new Promise<import('node:net').Socket>((r) => {
            const s = connect(port, '127.0.0.1', () => r(s));
            s.on('error', () => {});
          }),
      ),
    );
    const refused = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n', { waitMs: 3000 });
    expect(refused.status).toBe(0);
    expect(refused.closedByServer).toBe(true);
    for (const s of idle) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect(
      (await rawExchange(port, 'GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')).status,
    ).toBe(200);
  });
});

describe('local resource exhaustion', () => {
  it('answers 503 and never counts EMFILE against the provider', async () => {
    const emfileError = () => Object.assign(new Error('connect EMFILE'), { code: 'EMFILE' });
    const emfile = {
      send: () => Promise.reject(emfileError()),
      // Non-streamed requests go through exchange() (the answer read whole).
      exchange: () => ({ answer: Promise.reject(emfileError()), abort() {} }),
      close: async () => {},
    } as unknown as UpstreamClient;
    const local = await startTestGateway(sampleFile({ alpha: alpha.url }), { gateway: { client: emfile } });
    try {
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${local.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: CHAT,
        });
        expect(res.status).toBe(503);
        expectOpenAIError(await res.text(), 'local_resources_exhausted');
      }
      const m = local.router.config.models.get('alpha/alpha-mini')!;
      expect(local.router.health.breakerState(m)).toBe('closed');
      expect(local.router.health.available(m)).toBe(true);
    } finally {
      await local.close();
    }
  });
});
