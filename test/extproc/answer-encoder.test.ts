// The hand-written answer encoder against protobufjs: the same answers decode to the same
// messages, and shapes it does not cover go to protobufjs.
import { describe, expect, it } from 'vitest';
import { encodeAnswer } from '../../src/extproc/answer-encoder.js';
import { extProcCodec } from '../../src/extproc/codec.js';
import { appendHeader, setHeader } from '../../src/extproc/headers.js';
import { processingMode } from '../../src/extproc/processor.js';
import type { ProcessingResponse } from '../../src/extproc/types.js';

const c = extProcCodec();
const CONTINUE = { status: 'CONTINUE' as const };
const metadata = {
  fields: {
    tierflow: {
      structValue: {
        fields: {
          model: { stringValue: 'mini ü' },
          attempts: { numberValue: 2 },
          ok: { boolValue: true },
          none: { nullValue: 'NULL_VALUE' as const },
        },
      },
    },
  },
};

const answers: Record<string, () => ProcessingResponse> = {
  'plain CONTINUE': () => ({ request_headers: { response: { ...CONTINUE } } }),
  'empty member': () => ({ response_trailers: undefined, request_body: {} }),
  'request body rewrite with metadata': () => ({
    request_body: {
      response: {
        ...CONTINUE,
        header_mutation: {
          set_headers: [
            setHeader(':path', '/v1/chat/completions'),
            setHeader('authorization', 'Bearer sk-x'),
            setHeader('x-empty', ''),
            appendHeader('x-multi', 'a'),
            { header: { key: 'x-legacy', value: 'text ü' }, append: { value: false } },
            {
              header: { key: 'x-empty-append', raw_value: Buffer.from('v') },
              append: {} as { value: boolean },
            },
          ],
          remove_headers: ['user-agent', 'accept'],
        },
        body_mutation: { body: Buffer.from('{"model":"gpt","messages":[]}'.repeat(300)) },
        clear_route_cache: true,
      },
    },
    dynamic_metadata: metadata,
  }),
  'empty header mutation, empty body': () => ({
    request_headers: {
      response: { ...CONTINUE, header_mutation: {}, body_mutation: { body: Buffer.alloc(0) } },
    },
  }),
  'response headers with mode override': () => ({
    response_headers: {
      response: { ...CONTINUE, header_mutation: { set_headers: [setHeader('x-a', '1')] } },
    },
    mode_override: processingMode('STREAMED'),
  }),
  'response body chunk': () => ({
    response_body: { response: { ...CONTINUE, body_mutation: { body: Buffer.from('data: {}\n\n') } } },
  }),
};

describe('encodeAnswer', () => {
  for (const [name, make] of Object.entries(answers)) {
    it(`matches protobufjs: ${name}`, () => {
      const answer = make();
      const fast = c.encodeResponse(answer); // normalizes the enums in place
      const reference = c.encodeResponseWithProtobufjs(make());
      expect(c.decodeResponse(fast)).toEqual(c.decodeResponse(reference));
      expect(encodeAnswer(answer)).toBeDefined();
    });
  }

  it('large bodies and many headers (multi-byte lengths)', () => {
    const make = (): ProcessingResponse => ({
      request_body: {
        response: {
          ...CONTINUE,
          header_mutation: {
            set_headers: Array.from({ length: 300 }, (_, i) => setHeader(`x-h${i}`, 'v'.repeat(i * 7))),
          },
          body_mutation: { body: Buffer.alloc(300_000, 0x61) },
        },
      },
      dynamic_metadata: metadata,
    });
    expect(c.decodeResponse(c.encodeResponse(make()))).toEqual(
      c.decodeResponse(c.encodeResponseWithProtobufjs(make())),
    );
  });

  it('writes nested Structs that protobufjs decodes back to the same values', () => {
    const inner = (tag: string) => ({
      fields: {
        name: { stringValue: `${tag} ü ` + 'x'.repeat(200) },
        n: { numberValue: -1.5 },
        deeper: {
          structValue: { fields: { flag: { boolValue: false }, none: { nullValue: 'NULL_VALUE' as const } } },
        },
        empty: { structValue: { fields: {} } },
      },
    });
    const md = {
      fields: {
        first: { structValue: inner('a') },
        between: { stringValue: '' },
        second: { structValue: inner('b'.repeat(300)) },
      },
    };
    const decoded = c.decodeResponse(
      c.encodeResponse({ request_headers: { response: { ...CONTINUE } }, dynamic_metadata: md }),
    );
    // toJSON: enums by name, as written
    const plain = JSON.parse(JSON.stringify(decoded.dynamic_metadata)) as unknown;
    const expected = JSON.parse(JSON.stringify(md)) as {
      fields: Record<string, { structValue: ReturnType<typeof inner> }>;
    };
    // protobufjs leaves out an empty Struct's fields map
    for (const k of ['first', 'second'])
      (expected.fields[k]!.structValue.fields.empty as unknown as { structValue: object }).structValue = {};
    expect(plain).toEqual(expected);
  });

  it('leaves what it does not cover to protobufjs', () => {
    const immediate: ProcessingResponse = {
      immediate_response: { status: { code: 404 }, body: Buffer.from('{}'), details: 'x' },
    };
    expect(encodeAnswer(immediate)).toBeUndefined();
    expect(c.decodeResponse(c.encodeResponse(immediate))).toEqual(
      c.decodeResponse(c.encodeResponseWithProtobufjs(immediate)),
    );
    const timeout = { override_message_timeout: { seconds: 5, nanos: 0 } } as ProcessingResponse;
    expect(encodeAnswer(timeout)).toBeUndefined();
    const trailers = { request_trailers: {} } as ProcessingResponse;
    expect(encodeAnswer(trailers)).toBeUndefined();
  });
});
