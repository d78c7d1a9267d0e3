// Two `tierflow serve --redis` processes (the built CLI) share the Responses API conversations
// they store: previous_response_id continues, on the other replica, a response a chat-only
// provider (Anthropic) gave, with the same owner check; TIERFLOW_REDIS_RESPONSES=off keeps them
// in each process.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { type CliProcess, startCli } from '../helpers/cli-process.js';
import { model } from '../helpers/config.js';
import { findRedisServer, RedisServer } from '../helpers/redis.js';
import { startAnthropicMock } from '../mocks/anthropic-mock.js';
import type { MockServer } from '../mocks/faults.js';

const bin = findRedisServer();
const UPSTREAM_KEY = 'sk-ant-shared-responses-upstream-key';

function writeConfig(baseUrl: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tierflow-responses-')), 'tierflow.yaml');
  writeFileSync(
    file,
    stringify({
      providers: [
        {
          name: 'claude',
          type: 'anthropic',
          baseUrl,
          credentials: { apiKey: UPSTREAM_KEY },
          models: [model('claude-haiku', 'lightweight', 1, 5)],
        },
      ],
      policies: [{ name: 'default', virtualModels: ['auto'], tiers: [{ name: 'lightweight' }] }],
    }),
  );
  return file;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!bin)('Responses API conversations shared by two gateways through Redis', () => {
  let redis: RedisServer;
  let mock: MockServer;
  const gateways: CliProcess[] = [];
  const sdk = (g: CliProcess, apiKey = 'client-one') =>
    new OpenAI({ baseURL: g.listening.url as string, apiKey, maxRetries: 0 });

  beforeAll(async () => {
    redis = await RedisServer.start(bin!);
    mock = await startAnthropicMock({ apiKey: UPSTREAM_KEY });
    const config = writeConfig(mock.url);
    const serve = (env: Record<string, string> = {}) =>
      startCli(['serve', '--port', '0', '--config', config, '--redis', redis.url], env);
    gateways.push(await serve(), await serve(), await serve({ TIERFLOW_REDIS_RESPONSES: 'off' }));
    // Each gateway subscribes once Redis answers: wait until both sharing ones said so.
    for (const g of gateways.slice(0, 2)) {
      for (let i = 0; i < 100 && !g.output().includes('sharing Responses API conversations'); i++)
        await sleep(20);
    }
  }, 30_000);

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop('SIGKILL')));
    await mock?.close();
    await redis?.stop();
  });

  it('continues a conversation stored by the other replica, for its owner only', async () => {
    const [one, two, alone] = gateways as [CliProcess, CliProcess, CliProcess];
    mock.setResponse({ content: 'Nice to meet you, Ada.' });
    const first = await sdk(one).responses.create({ model: 'auto', input: 'My name is Ada.' });

    // The subscriber on the other replica receives it within milliseconds; poll instead of sleeping.
    mock.setResponse({ content: 'Your name is Ada.' });
    let second: OpenAI.Responses.Response | undefined;
    for (let i = 0; i < 50 && !second; i++) {
      second = await sdk(two)
        .responses.create({ model: 'auto', previous_response_id: first.id, input: 'What is my name?' })
        .catch((err: unknown) => {
          if (!(err instanceof OpenAI.BadRequestError)) throw err;
          return sleep(20).then(() => undefined);
        });
    }
    expect(second?.output_text).toBe('Your name is Ada.');
    const sent = mock.lastRequest!.body.messages as { role: string; content: unknown }[];
    expect(JSON.stringify(sent)).toContain('My name is Ada.');
    expect(JSON.stringify(sent)).toContain('Nice to meet you, Ada.');

    // Another client key cannot continue it on either replica; nor can a replica that does not share.
    const requestsBefore = mock.requests.length;
    for (const [g, key] of [
      [two, 'client-two'],
      [alone, 'client-one'],
    ] as const) {
      const err = await sdk(g, key)
        .responses.create({ model: 'auto', previous_response_id: first.id, input: 'What is my name?' })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    }
    expect(mock.requests.length).toBe(requestsBefore);
    for (const g of gateways) expect(g.output()).not.toContain(UPSTREAM_KEY);
    expect(alone.output()).not.toContain('sharing Responses API conversations');
  }, 60_000);
});
