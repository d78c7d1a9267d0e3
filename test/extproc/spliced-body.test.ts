// The request body rewrite written into the ext_proc answer piece by piece (SplicedBody): the
// answer, decoded by protobufjs, carries exactly rewriteModel's bytes, and those are the bytes
// written out below by hand.
import { describe, expect, it } from 'vitest';
import { rewriteModel, SplicedBody, spliceModel } from '../../src/core/raw-json.js';
import { SplicedRequest } from '../../src/core/providers/spliced-request.js';
import { encodeAnswer } from '../../src/extproc/answer-encoder.js';
import { extProcCodec } from '../../src/extproc/codec.js';
import { setHeader } from '../../src/extproc/headers.js';
import type { ProcessingResponse } from '../../src/extproc/types.js';

const c = extProcCodec();
const INCLUDE_USAGE = '"stream_options":{"include_usage":true}';
const long = 'step by step, with \\"quotes\\" and é 世界 '.repeat(600); // > 16 KB: 3-byte lengths

const cases: Array<{ name: string; body: string; model: string; first?: string; expected: string }> = [
  {
    name: 'model first',
    body: '{"model":"auto","messages":[{"role":"user","content":"hi"}]}',
    model: 'gpt-4o-mini',
    expected: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
  },
  {
    name: 'model last',
    body: '{"messages":[{"role":"user","content":"hi"}],"stream":false,"model":"auto"}',
    model: 'm',
    expected: '{"messages":[{"role":"user","content":"hi"}],"stream":false,"model":"m"}',
  },
  {
    name: 'model in the middle, nested models untouched',
    body: '{"tools":[{"model":"nested"}],"model":"auto","metadata":{"model":"x"}}',
    model: 'claude-haiku',
    expected: '{"tools":[{"model":"nested"}],"model":"claude-haiku","metadata":{"model":"x"}}',
  },
  {
    name: 'escapes in the content and in the new value',
    body: '{"messages":[{"role":"user","content":"say \\"model\\": \\"x\\" \\\\"}],"model":"a\\"b"}',
    model: 'we"ird\\',
    expected:
      '{"messages":[{"role":"user","content":"say \\"model\\": \\"x\\" \\\\"}],"model":"we\\"ird\\\\"}',
  },
  {
    name: 'whitespace around the object and the colon',
    body: ' \n\t{ "model" :\n "auto" , "n" : 1 }\n',
    model: 'up',
    expected: ' \n\t{ "model" :\n "up" , "n" : 1 }\n',
  },
  {
    name: 'a first member inserted, two top-level models',
    body: '{"model":"a","stream":true,"model":"b"}',
    model: 'up',
    first: INCLUDE_USAGE,
    expected: `{${INCLUDE_USAGE},"model":"up","stream":true,"model":"up"}`,
  },
  {
    name: 'a long multi-byte body',
    body: `{"messages":[{"role":"user","content":"${long}"}],"model":"auto"}`,
    model: 'モデル',
    expected: `{"messages":[{"role":"user","content":"${long}"}],"model":"モデル"}`,
  },
];

const answer = (body: Buffer | SplicedBody): ProcessingResponse => ({
  request_body: {
    response: {
      status: 'CONTINUE',
      header_mutation: {
        set_headers: [
          setHeader(':path', '/v1/chat/completions'),
          setHeader('content-length', String(body.length)),
        ],
        remove_headers: ['user-agent'],
      },
      body_mutation: { body },
      clear_route_cache: true,
    },
  },
  dynamic_metadata: { fields: { tierflow: { structValue: { fields: { model: { stringValue: 'm' } } } } } },
});

const decodedBody = (bytes: Buffer) =>
  (c.decodeResponse(bytes).request_body!.response!.body_mutation!.body as Buffer).toString();

/** The codec's bytes, checked to be the hand encoder's (the codec normalizes the enums first). */
function encodeByHand(res: ProcessingResponse): Buffer {
  const bytes = c.encodeResponse(res);
  expect(encodeAnswer(res)?.equals(bytes)).toBe(true);
  return bytes;
}

describe('SplicedBody in the ext_proc answer', () => {
  for (const { name, body, model, first, expected } of cases) {
    it(`carries rewriteModel's bytes: ${name}`, () => {
      const raw = Buffer.from(body);
      const rewritten = rewriteModel(raw, model, first)!;
      expect(rewritten.toString()).toBe(expected);
      const splice = spliceModel(raw, model, first)!;
      expect(splice.length).toBe(Buffer.byteLength(expected));

      const bytes = encodeByHand(answer(splice));
      expect(decodedBody(bytes)).toBe(expected);
      // the same answer bytes as with the materialised body
      expect(bytes.equals(encodeByHand(answer(rewritten)))).toBe(true);
      // the protobufjs path (shapes the hand encoder leaves) makes the bytes first
      expect(decodedBody(c.encodeResponseWithProtobufjs(answer(spliceModel(raw, model, first)!)))).toBe(
        expected,
      );
    });
  }

  it('writes into the middle of a larger buffer without touching its neighbours', () => {
    const splice = spliceModel(Buffer.from('{"model":"auto","n":1}'), 'longer-model')!;
    const out = Buffer.alloc(splice.length + 6, 0x2e);
    expect(splice.writeInto(out, 3)).toBe(3 + splice.length);
    expect(out.toString()).toBe('...{"model":"longer-model","n":1}...');
  });

  it('is declined with no top-level model (the caller serializes the request)', () => {
    expect(spliceModel(Buffer.from('{"messages":[],"tools":[{"model":"x"}]}'), 'm')).toBeUndefined();
    expect(rewriteModel(Buffer.from(' {"messages":[]}'), 'm')).toBeUndefined();
  });
});

describe('SplicedRequest', () => {
  const url = new URL('https://api.example.test/v1/chat/completions');

  it('makes its body only when read, from the pieces', () => {
    const splice = spliceModel(Buffer.from('{"model":"auto"}'), 'm')!;
    const req = new SplicedRequest(url, { 'content-type': 'application/json' }, splice);
    expect(req.method).toBe('POST');
    expect(req.bodySplice).toBe(splice);
    expect(req.body.toString()).toBe('{"model":"m"}');
    expect(req.body).toBe(req.body); // made once
  });

  it('drops the pieces once its body is replaced (released after commit)', () => {
    const req = new SplicedRequest(url, {}, spliceModel(Buffer.from('{"model":"auto"}'), 'm')!);
    const released = Buffer.alloc(0);
    req.body = released;
    expect(req.bodySplice).toBeUndefined();
    expect(req.body).toBe(released);
  });
});
