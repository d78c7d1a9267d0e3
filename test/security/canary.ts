// Secret canary: every provider family's mock is configured with a fresh random credential and
// echoes it back in every field of its error bodies, in 200 answers that are not JSON, mid-stream
// (error events and malformed chunks) and, for the sidecar's pass-through, in a provider error.
// Everything that leaves TierFlow is collected (client status lines, headers and bodies, every
// log line, /metrics) and searched for the credential and the forms it can be echoed in.
// Used by secret-canary.test.ts (both planes, every scenario) and scripts/security-canary.ts.
import { randomBytes } from 'node:crypto';
import { compileConfig } from '../../src/core/config/compile.js';
import type { CompiledConfig, ProviderCredentials } from '../../src/core/config/compiled.js';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { Secret } from '../../src/core/secret.js';
import { createGateway } from '../../src/gateway/server.js';
import { createLogger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import { UpstreamClient } from '../../src/pipeline/client.js';
import type { EnvoyHarness } from '../extproc/envoy-harness.js';
import { startSidecar } from '../extproc/sidecar.js';
import { startAnthropicMock } from '../mocks/anthropic-mock.js';
import { startAzureMock } from '../mocks/azure-mock.js';
import { startBedrockMock } from '../mocks/bedrock-mock.js';
import type { Fault, MockServer } from '../mocks/faults.js';
import { startGeminiMock } from '../mocks/gemini-mock.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';

const alnum = (n: number) =>
  randomBytes(n * 2)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, n);

/** Fresh credentials, shaped like the real ones. */
export function canaryKeys() {
  return {
    openai: `sk-proj-${alnum(48)}`,
    anthropic: `sk-ant-api03-${alnum(48)}`,
    gemini: `AIzaSy${alnum(33)}`,
    azure: randomBytes(16).toString('hex'),
    awsAccessKeyId: `AKIA${alnum(16).toUpperCase()}`,
    // AWS secret keys carry '/' and '+': URL-encoding changes them.
    awsSecret: `${alnum(12)}/${alnum(12)}+${alnum(14)}`,
    awsSession: `IQoJb3JpZ2luX2Vj${alnum(60)}`,
  };
}
export type CanaryKeys = ReturnType<typeof canaryKeys>;

/** Substrings that must never appear in anything TierFlow sends or logs. */
export function forbiddenForms(secret: string): string[] {
  const forms = new Set<string>([secret, encodeURIComponent(secret)]);
  const random = secret.replace(/^(sk-proj-|sk-ant-api03-|AIzaSy|IQoJb3JpZ2luX2Vj)/, '');
  forms.add(random); // without its prefix
  forms.add(random.slice(4, 20)); // any 16 consecutive characters of it
  forms.add(random.slice(-16));
  for (const prefix of ['', ':', 'u:', 'user:', 'apikey:']) {
    const b64 = Buffer.from(prefix + secret).toString('base64');
    forms.add(b64.slice(8, 32)); // inside HTTP Basic credentials
  }
  return [...forms].filter((f) => f.length >= 12);
}

export interface Family {
  name: string;
  model: string;
  mock: MockServer;
  /** The credential a leak would expose (the AWS secret key for Bedrock). */
  secret: string;
  /** Provider-shaped error bodies echoing `k` in every field. */
  errorFaults(status: number, k: string): Fault[];
  /** 200 SSE bodies: a first good event, then an error event (or a malformed chunk) echoing `k`. */
  streamFaults(k: string): Fault[];
}

const sse = (body: string): Fault => ({
  kind: 'status',
  status: 200,
  headers: { 'content-type': 'text/event-stream' },
  body,
});
const openaiChunk = `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { role: 'assistant', content: 'Hi' }, finish_reason: null }] })}\n\n`;
const anthropicStart =
  `event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'm', content: [], usage: { input_tokens: 1, output_tokens: 0 } } })}\n\n` +
  `event: content_block_start\ndata: ${JSON.stringify({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } })}\n\n` +
  `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi' } })}\n\n`;
const geminiChunk = `data: ${JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: 'Hi' }] } }] })}\n\n`;

const openaiError = (status: number, k: string): Fault[] => [
  {
    kind: 'status',
    status,
    body: {
      error: {
        message: `Incorrect API key provided: ${k}.`,
        type: `t_${k}`,
        param: `p_${k}`,
        code: `c_${k}`,
      },
    },
  },
  // No code: the provider's type is what travels in `code`.
  { kind: 'status', status, body: { error: { message: `m ${k}`, type: `t_${k}`, param: null, code: null } } },
  { kind: 'status', status, body: { error: `plain ${k}` } },
  { kind: 'status', status, body: { message: `m ${k}`, detail: `d ${k}` } },
];
const openaiStream = (k: string): Fault[] => [
  sse(
    `${openaiChunk}data: ${JSON.stringify({ error: { message: `m ${k}`, type: `t_${k}`, param: `p_${k}`, code: `c_${k}` } })}\n\n`,
  ),
  sse(`${openaiChunk}data: not json ${k}\n\n`),
  sse(`data: {"broken ${k}\n\n`),
];

/** Starts every family's mock with fresh credentials. */
export async function startFamilies(keys: CanaryKeys): Promise<Family[]> {
  const [openai, anthropic, gemini, azure, bedrock] = await Promise.all([
    startOpenAIMock({ apiKey: keys.openai }),
    startAnthropicMock({ apiKey: keys.anthropic }),
    startGeminiMock({ apiKey: keys.gemini }),
    startAzureMock({ apiKey: keys.azure, deployments: ['prod-mini'] }),
    startBedrockMock({
      credentials: {
        accessKeyId: keys.awsAccessKeyId,
        secretAccessKey: keys.awsSecret,
        sessionToken: keys.awsSession,
      },
      region: 'eu-west-1',
    }),
  ]);
  return [
    {
      name: 'openai',
      model: 'oa-mini',
      mock: openai,
      secret: keys.openai,
      errorFaults: openaiError,
      streamFaults: openaiStream,
    },
    {
      name: 'azure',
      model: 'az-mini',
      mock: azure,
      secret: keys.azure,
      errorFaults: openaiError,
      streamFaults: openaiStream,
    },
    {
      name: 'anthropic',
      model: 'an-small',
      mock: anthropic,
      secret: keys.anthropic,
      errorFaults: (status, k) => [
        { kind: 'status', status, body: { type: 'error', error: { type: `t_${k}`, message: `m ${k}` } } },
      ],
      streamFaults: (k) => [
        sse(
          `${anthropicStart}event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: `t_${k}`, message: `m ${k}` } })}\n\n`,
        ),
        sse(`${anthropicStart}event: content_block_delta\ndata: not json ${k}\n\n`),
      ],
    },
    {
      name: 'gemini',
      model: 'ge-flash',
      mock: gemini,
      secret: keys.gemini,
      errorFaults: (status, k) => [
        {
          kind: 'status',
          status,
          body: {
            error: {
              code: status,
              message: `API key not valid: ${k}`,
              status: `S_${k}`,
              details: [
                {
                  '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
                  reason: `R_${k}`,
                  metadata: { key: k },
                },
              ],
            },
          },
        },
      ],
      streamFaults: (k) => [
        sse(
          `${geminiChunk}data: ${JSON.stringify({ error: { code: 500, message: `m ${k}`, status: `S_${k}` } })}\n\n`,
        ),
        sse(`${geminiChunk}data: not json ${k}\n\n`),
      ],
    },
    {
      name: 'bedrock',
      model: 'br-lite',
      mock: bedrock,
      secret: keys.awsSecret,
      errorFaults: (status, k) => [
        {
          kind: 'status',
          status,
          headers: { 'x-amzn-errortype': `T_${k}:http://internal.amazon.com/coral/com.amazon.bedrock/` },
          body: { message: `The request signature we calculated does not match: ${k}`, Message: `M ${k}` },
        },
      ],
      streamFaults: (k) => [{ kind: 'stream-error', afterEvents: 1, errorType: `T_${k}`, message: `m ${k}` }],
    },
  ];
}

const model = (name: string, upstreamModel: string) => ({
  name,
  upstreamModel,
  tier: 'lightweight',
  pricing: { inputPerMTok: 1, outputPerMTok: 2 },
  contextWindow: 128_000,
  maxOutputTokens: 8_000,
  capabilities: ['tools', 'streaming'],
});

export function canaryConfig(families: Family[], keys: CanaryKeys): CompiledConfig {
  const url = (n: string) => families.find((f) => f.name === n)!.mock.url;
  const file = {
    providers: [
      {
        name: 'openai',
        type: 'openai',
        baseUrl: url('openai'),
        credentials: { apiKeyEnv: 'OPENAI' },
        models: [model('oa-mini', 'gpt-4o-mini')],
      },
      {
        name: 'azure',
        type: 'azure-openai',
        baseUrl: url('azure'),
        apiVersion: '2024-10-21',
        credentials: { apiKeyEnv: 'AZURE' },
        models: [model('az-mini', 'prod-mini')],
      },
      {
        name: 'anthropic',
        type: 'anthropic',
        baseUrl: url('anthropic'),
        credentials: { apiKeyEnv: 'ANTHROPIC' },
        models: [model('an-small', 'claude-haiku-4-5')],
      },
      {
        name: 'gemini',
        type: 'gemini',
        baseUrl: url('gemini'),
        credentials: { apiKeyEnv: 'GEMINI' },
        models: [model('ge-flash', 'gemini-2.5-flash')],
      },
      {
        name: 'bedrock',
        type: 'bedrock',
        baseUrl: url('bedrock'),
        region: 'eu-west-1',
        credentials: {
          awsAccessKeyIdRef: { name: 'aws', key: 'id' },
          awsSecretAccessKeyRef: { name: 'aws', key: 'secret' },
          awsSessionTokenRef: { name: 'aws', key: 'token' },
        },
        models: [model('br-lite', 'eu.amazon.nova-lite-v1:0')],
      },
    ],
    policies: [
      {
        name: 'default',
        virtualModels: ['auto'],
        tiers: [{ name: 'lightweight', models: ['openai/oa-mini'] }],
      },
    ],
  };
  const env: Record<string, string> = {
    OPENAI: keys.openai,
    AZURE: keys.azure,
    ANTHROPIC: keys.anthropic,
    GEMINI: keys.gemini,
  };
  const r = compileConfig(file, {
    resolveCredentials: (_p, spec): ProviderCredentials => {
      const c: ProviderCredentials = {};
      if (spec.apiKeyEnv) c.apiKey = new Secret(env[spec.apiKeyEnv]!);
      if (spec.awsAccessKeyIdRef) c.awsAccessKeyId = new Secret(keys.awsAccessKeyId);
      if (spec.awsSecretAccessKeyRef) c.awsSecretAccessKey = new Secret(keys.awsSecret);
      if (spec.awsSessionTokenRef) c.awsSessionToken = new Secret(keys.awsSession);
      return c;
    },
  });
  if (!r.config) throw new Error(`canary config: ${JSON.stringify(r.issues)}`);
  return r.config;
}

/** Both planes over the same families, with everything they emit captured. */
export interface Planes {
  gatewayUrl: string;
  sidecarUrl: string;
  logs: string[];
  metricsText(): Promise<string>;
  routers: Router[];
  harness: EnvoyHarness;
  close(): Promise<void>;
}

export async function startPlanes(config: CompiledConfig): Promise<Planes> {
  const logs: string[] = [];
  const log = createLogger('debug', {}, (line) => logs.push(line));
  const gwMetrics = new Metrics({ defaultMetrics: false });
  const scMetrics = new Metrics({ defaultMetrics: false });
  const gwRouter = new Router({ config, health: new HealthRegistry() });
  const scRouter = new Router({ config, health: new HealthRegistry() });
  const client = new UpstreamClient();
  const gateway = createGateway({ router: gwRouter, metrics: gwMetrics, log, client });
  const addr = await gateway.listen(0, '127.0.0.1');
  const sidecar = await startSidecar({ router: scRouter, metrics: scMetrics, log, client });
  return {
    gatewayUrl: `http://127.0.0.1:${addr.port}`,
    sidecarUrl: sidecar.url,
    logs,
    routers: [gwRouter, scRouter],
    harness: sidecar.harness,
    metricsText: async () => (await gwMetrics.registry.metrics()) + (await scMetrics.registry.metrics()),
    async close() {
      await sidecar.close();
      await gateway.close(500);
      await client.close();
      gwRouter.health.close();
      scRouter.health.close();
    },
  };
}

export interface Exchange {
  plane: string;
  what: string;
  status: number;
  /** Status line, every header and the body, as the client saw them. */
  text: string;
  body: string;
}

/** One request; the answer as text (headers included). */
export async function exchange(
  base: string,
  plane: string,
  what: string,
  path: string,
  body: unknown,
): Promise<Exchange> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-client-placeholder' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const headers = [...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n');
  return { plane, what, status: res.status, body: text, text: `${res.status}\n${headers}\n\n${text}` };
}

/** Fresh breakers, and providers that refused credentials back in rotation. */
export function resetHealth(planes: Planes): void {
  for (const r of planes.routers) {
    r.health.close();
    r.health.retain(r.config);
  }
}

/** Every scenario on both planes; returns what the clients saw. */
export async function runScenarios(
  families: Family[],
  planes: Planes,
  statuses: number[],
): Promise<Exchange[]> {
  const out: Exchange[] = [];
  const bases: [string, string][] = [
    ['gateway', planes.gatewayUrl],
    ['sidecar', planes.sidecarUrl],
  ];
  const ask = (model: string, stream: boolean) => ({
    model,
    stream,
    messages: [{ role: 'user', content: 'hello' }],
  });
  for (const [plane, base] of bases) {
    for (const f of families) {
      const run = async (what: string, fault: Fault, stream: boolean) => {
        resetHealth(planes); // breakers and refused credentials must not stop the mock being asked
        f.mock.failNext(fault);
        out.push(
          await exchange(base, plane, `${f.name} ${what}`, '/v1/chat/completions', ask(f.model, stream)),
        );
      };
      for (const status of statuses) {
        for (const fault of f.errorFaults(status, f.secret)) {
          await run(`error ${status}`, fault, false);
          await run(`error ${status} (stream)`, fault, true);
        }
      }
      const nonJson: Fault = {
        kind: 'status',
        status: 200,
        headers: { 'content-type': 'text/plain' },
        body: `proxy: key=${f.secret} enc=${encodeURIComponent(f.secret)} auth=Basic ${Buffer.from(`:${f.secret}`).toString('base64')}`,
      };
      await run('200 not JSON', nonJson, false);
      await run('200 not JSON (stream)', nonJson, true);
      for (const fault of f.streamFaults(f.secret)) await run('mid-stream', fault, true);
    }
  }
  // The sidecar's pass-through: the provider's own error body goes back to the client (redacted).
  const openai = families.find((f) => f.name === 'openai')!;
  for (const status of statuses) {
    for (const fault of openai.errorFaults(status, openai.secret)) {
      openai.mock.failNext(fault);
      out.push(
        await exchange(planes.sidecarUrl, 'sidecar', `passthrough ${status}`, '/v1/moderations', {
          model: 'oa-mini',
          input: 'x',
        }),
      );
    }
  }
  openai.mock.failNext({
    kind: 'status',
    status: 502,
    headers: { 'content-type': 'text/html' },
    body: `<h1>bad gateway ${openai.secret}</h1>`,
  });
  out.push(
    await exchange(planes.sidecarUrl, 'sidecar', 'passthrough 502 html', '/v1/moderations', {
      model: 'oa-mini',
      input: 'x',
    }),
  );
  return out;
}

/** Every place a secret (or a form of it) appears in `texts`. */
export function findLeaks(texts: { where: string; text: string }[], secrets: string[]): string[] {
  const leaks: string[] = [];
  for (const secret of secrets) {
    for (const form of forbiddenForms(secret)) {
      for (const t of texts) if (t.text.includes(form)) leaks.push(`${t.where}: contains '${form}'`);
    }
  }
  return leaks;
}
