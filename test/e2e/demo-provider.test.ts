// The demo provider through the gateway, with the official SDK: it answers the way client code
// expects offline — n choices, a required tool call with schema-valid arguments, json_schema
// output — streamed and not.
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoProvider, type DemoProvider } from '../../src/gateway/demo-provider.js';
import { model } from '../helpers/config.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

let demo: DemoProvider;
let gw: TestGateway;
let sdk: OpenAI;

beforeAll(async () => {
  demo = await startDemoProvider();
  gw = await startTestGateway({
    providers: [
      {
        name: 'demo',
        type: 'demo',
        baseUrl: demo.url,
        models: [model('demo-mini', 'lightweight', 0.1, 0.5)],
      },
    ],
    policies: [{ name: 'default', virtualModels: ['auto'], tiers: [{ name: 'lightweight' }] }],
  });
  sdk = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close();
  await demo?.close();
});

const weather = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string' },
        unit: { type: 'string', enum: ['c', 'f'] },
        days: { type: 'integer', minimum: 1 },
      },
      required: ['city', 'unit', 'days'],
      additionalProperties: false,
    },
  },
};
const other = {
  type: 'function' as const,
  function: { name: 'noop', parameters: { type: 'object', properties: {} } },
};
const ask = [{ role: 'user' as const, content: 'Weather in Paris?' }];
const ajv = new Ajv({ strict: false });

describe('demo provider', () => {
  it('n: as many choices as asked', async () => {
    const r = await sdk.chat.completions.create({ model: 'auto', n: 3, messages: ask });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    for (const c of r.choices) expect(c.message.content).toMatch(/demo provider/);
  });

  it('tool_choice "required": a call of a tool with arguments valid against its schema', async () => {
    const r = await sdk.chat.completions.create({
      model: 'auto',
      tools: [weather, other],
      tool_choice: 'required',
      messages: ask,
    });
    const call = r.choices[0]!.message.tool_calls![0]!;
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');
    expect(call.type === 'function' && call.function.name).toBe('get_weather');
    expect(
      call.type === 'function' &&
        ajv.validate(weather.function.parameters, JSON.parse(call.function.arguments)),
    ).toBe(true);
  });

  it('tool_choice naming a function calls that one; "auto" answers in text', async () => {
    const named = await sdk.chat.completions.create({
      model: 'auto',
      tools: [weather, other],
      tool_choice: { type: 'function', function: { name: 'noop' } },
      messages: ask,
    });
    const call = named.choices[0]!.message.tool_calls![0]!;
    expect(call.type === 'function' && call.function.name).toBe('noop');
    const auto = await sdk.chat.completions.create({ model: 'auto', tools: [weather], messages: ask });
    expect(auto.choices[0]!.message.tool_calls).toBeUndefined();
    expect(auto.choices[0]!.message.content).toMatch(/demo provider/);
  });

  it('a required tool call streams as tool_call deltas the SDK assembles', async () => {
    const stream = sdk.chat.completions.stream({
      model: 'auto',
      tools: [weather],
      tool_choice: 'required',
      messages: ask,
    });
    const final = await stream.finalChatCompletion();
    const call = final.choices[0]!.message.tool_calls![0]!;
    expect(
      call.type === 'function' &&
        ajv.validate(weather.function.parameters, JSON.parse(call.function.arguments)),
    ).toBe(true);
  });

  it('json_schema: the content is a schema-valid object (parsed by the SDK), streamed too', async () => {
    const schema = {
      type: 'object',
      properties: {
        answer: { type: 'string' },
        confidence: { type: 'number', minimum: 0, maximum: 1 },
        tags: { type: 'array', items: { type: 'string' } },
      },
      required: ['answer', 'confidence', 'tags'],
      additionalProperties: false,
    };
    const response_format = {
      type: 'json_schema' as const,
      json_schema: { name: 'reply', strict: true, schema },
    };
    const r = await sdk.chat.completions.parse({ model: 'auto', response_format, messages: ask });
    expect(ajv.validate(schema, r.choices[0]!.message.parsed)).toBe(true);
    let text = '';
    for await (const c of await sdk.chat.completions.create({
      model: 'auto',
      response_format,
      stream: true,
      messages: ask,
    })) {
      text += c.choices[0]?.delta?.content ?? '';
    }
    expect(ajv.validate(schema, JSON.parse(text))).toBe(true);
  });

  it('n streamed: each choice arrives under its index', async () => {
    const texts = ['', ''];
    for await (const c of await sdk.chat.completions.create({
      model: 'auto',
      n: 2,
      stream: true,
      messages: ask,
    })) {
      for (const ch of c.choices) texts[ch.index] += ch.delta?.content ?? '';
    }
    expect(texts[0]).toMatch(/demo provider/);
    expect(texts[1]).toMatch(/choice 2/);
  });
});
