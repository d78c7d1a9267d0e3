// First run: the built CLI on the shipped tierflow.yaml with no API keys answers through the
// local demo provider, says how to add keys, and shuts down cleanly on SIGTERM.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let child: ChildProcess;
let baseURL: string;
let stderr = '';

beforeAll(async () => {
  const env: Record<string, string | undefined> = { ...process.env, TIERFLOW_LOG_LEVEL: 'info' };
  for (const k of [
    'OPENAI_API_KEY',
    'ANTHROPIC_API_KEY',
    'GEMINI_API_KEY',
    'AWS_ACCESS_KEY_ID',
    'AWS_BEARER_TOKEN_BEDROCK',
  ])
    delete env[k];
  child = spawn(process.execPath, ['bin/tierflow.js', 'serve', '--port', '0'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  baseURL = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === 'tierflow gateway listening') resolve(entry.url!);
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
  });
});

afterAll(() => {
  if (child.exitCode === null) child.kill('SIGKILL');
});

describe('tierflow serve on the default config, no keys', () => {
  it('answers a chat completion from the demo provider and explains how to add keys', async () => {
    const sdk = new OpenAI({ baseURL, apiKey: 'none', maxRetries: 0 });
    const { data, response } = await sdk.chat.completions
      .create({ model: 'auto', messages: [{ role: 'user', content: 'Hello' }] })
      .withResponse();
    expect(data.choices[0]!.message.content).toMatch(/demo provider/);
    expect(response.headers.get('x-tierflow-provider')).toBe('demo');
    expect(stderr).toMatch(/DEMO mode/);
    expect(stderr).toMatch(/OPENAI_API_KEY/);
  });

  it('streams too', async () => {
    const sdk = new OpenAI({ baseURL, apiKey: 'none', maxRetries: 0 });
    let text = '';
    for await (const c of await sdk.chat.completions.create({
      model: 'auto',
      stream: true,
      messages: [{ role: 'user', content: 'Hi' }],
    })) {
      text += c.choices[0]?.delta?.content ?? '';
    }
    expect(text).toMatch(/demo provider/);
  });

  it('exits 0 on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
