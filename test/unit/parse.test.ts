import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/core/errors.js';
import { parseChatRequest } from '../../src/core/parse.js';
import { exceedsJsonDepth, MAX_JSON_DEPTH } from '../../src/core/json-depth.js';

function errorOf(body: string | Buffer, limit?: number): ApiError {
  try {
    parseChatRequest(body, limit);
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('expected an ApiError');
}

describe('parseChatRequest', () => {
  it('parses a plain request and derives needs', () => {
    const r = parseChatRequest(
      JSON.stringify({
        model: 'auto',
        stream: true,
        stream_options: { include_usage: true },
        messages: [
          { role: 'system', content: 'be brief' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what is this?' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
            ],
          },
        ],
        tools: [{ type: 'function', function: { name: 'f', parameters: {} } }],
        response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } },
        max_completion_tokens: 50,
      }),
    );
    expect(r.model).toBe('auto');
    expect(r.stream).toBe(true);
    expect(r.clientWantsUsage).toBe(true);
    expect(r.needs).toEqual({ tools: true, vision: true, jsonSchema: true });
    expect(r.maxOutputTokens).toBe(50);
    expect(r.promptTokens).toBeGreaterThan(1000); // the image counts
  });

  it.each([
    ['{not json', 400, 'invalid_json', null],
    ['[]', 400, 'invalid_type', null],
    ['{"messages":[]}', 400, 'missing_required_parameter', 'model'],
    ['{"model":"auto"}', 400, 'missing_required_parameter', 'messages'],
    ['{"model":"auto","messages":"hi"}', 400, 'invalid_type', 'messages'],
    ['{"model":"auto","messages":[]}', 400, 'empty_array', 'messages'],
    [
      '{"model":"auto","messages":[{"role":"wizard","content":"x"}]}',
      400,
      'invalid_value',
      'messages[0].role',
    ],
    ['{"model":"auto","messages":[{"role":"user","content":5}]}', 400, 'invalid_type', 'messages[0].content'],
    [
      '{"model":"auto","messages":[{"role":"user"}]}',
      400,
      'missing_required_parameter',
      'messages[0].content',
    ],
    [
      '{"model":"auto","messages":[{"role":"tool","content":"r"}]}',
      400,
      'missing_required_parameter',
      'messages[0].tool_call_id',
    ],
    [
      '{"model":"auto","stream":"yes","messages":[{"role":"user","content":"x"}]}',
      400,
      'invalid_type',
      'stream',
    ],
    [
      '{"model":"auto","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}',
      400,
      'invalid_value',
      'max_tokens',
    ],
    [
      '{"model":"auto","temperature":"hot","messages":[{"role":"user","content":"x"}]}',
      400,
      'invalid_type',
      'temperature',
    ],
    [
      '{"model":"auto","tools":[{"type":"function"}],"messages":[{"role":"user","content":"x"}]}',
      400,
      'invalid_value',
      'tools[0]',
    ],
    ['', 400, null, null],
  ])('rejects %s', (body, status, code, param) => {
    const e = errorOf(body);
    expect(e.status).toBe(status);
    if (code) expect(e.code).toBe(code);
    expect(e.param).toBe(param);
    const wire = e.toBody();
    expect(Object.keys(wire.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  });

  it('rejects bodies over the limit with 413', () => {
    const e = errorOf(Buffer.alloc(2048, 32), 1024);
    expect(e.status).toBe(413);
    expect(e.code).toBe('request_too_large');
  });

  it('lets an assistant turn with tool calls have no content', () => {
    const r = parseChatRequest(
      JSON.stringify({
        model: 'auto',
        messages: [
          { role: 'user', content: 'weather?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'c1', type: 'function', function: { name: 'w', arguments: '{}' } }],
          },
          { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
        ],
      }),
    );
    expect(r.needs.tools).toBe(true);
  });
});

describe('nesting depth', () => {
  const deep = (n: number, open: string, close: string) => open.repeat(n) + close.repeat(n);
  it('refuses bodies nested beyond the limit with a 400 before anything walks them', () => {
    for (const [where, body] of [
      [
        'extra field',
        `{"model":"auto","messages":[{"role":"user","content":"x"}],"x":${deep(100_000, '[', ']')}}`,
      ],
      [
        'tool parameters',
        `{"model":"auto","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":${deep(20_000, '{"a":', '}').replace(/\{"a":\}/, '{}')}}}]}`,
      ],
      [
        'tool_calls',
        `{"model":"auto","messages":[{"role":"assistant","tool_calls":${deep(50_000, '[', ']')}}]}`,
      ],
    ] as const) {
      let caught: unknown;
      try {
        parseChatRequest(body);
      } catch (err) {
        caught = err;
      }
      expect(caught, where).toBeInstanceOf(ApiError);
      expect((caught as ApiError).status, where).toBe(400);
      expect((caught as ApiError).code, where).toBe('nesting_too_deep');
    }
  });

  it('counts brackets inside strings as text, and accepts the limit itself', () => {
    expect(exceedsJsonDepth(Buffer.from(`{"a":"${'['.repeat(1000)}\\"["}`))).toBe(false);
    expect(exceedsJsonDepth(Buffer.from(deep(MAX_JSON_DEPTH, '[', ']')))).toBe(false);
    expect(exceedsJsonDepth(Buffer.from(deep(MAX_JSON_DEPTH + 1, '[', ']')))).toBe(true);
    // a string ending in an escaped backslash closes there: the nesting after it counts
    const after = `{"a":"x\\\\","b":${deep(MAX_JSON_DEPTH, '[', ']')}}`;
    expect(JSON.parse(after).a).toBe('x\\');
    expect(exceedsJsonDepth(Buffer.from(after))).toBe(true);
    expect(exceedsJsonDepth(new Uint8Array(Buffer.from(after)))).toBe(true);
  });
});
