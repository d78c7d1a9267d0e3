// The ext_proc transport and the Envoy harness itself: a no-op server through all phases, the
// health service, graceful shutdown, message limits, and proof that the harness catches every
// protocol rule it claims to enforce (a harness that cannot fail proves nothing).
import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { extProcCodec } from '../../src/extproc/codec.js';
import { headerMutation, setHeader } from '../../src/extproc/headers.js';
import { noopProcessor } from '../../src/extproc/noop.js';
import { extProcService, healthService } from '../../src/extproc/protos.js';
import type { StreamProcessor } from '../../src/extproc/server.js';
import type { ProcessingRequest, ProcessingResponse } from '../../src/extproc/types.js';
import { EnvoyHarness } from './envoy-harness.js';
import { post, startExtProc, startUpstream } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  processor: () => StreamProcessor,
  harnessOpts: Partial<ConstructorParameters<typeof EnvoyHarness>[0]> = {},
) {
  const up = await startUpstream((req, body, res) => {
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const t = setInterval(() => {
        res.write(`data: {"n":${i}}\n\n`);
        if (++i === 5) {
          clearInterval(t);
          res.end('data: [DONE]\n\n');
        }
      }, 2);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ echo: body.toString(), path: req.url }));
  });
  const { server, target } = await startExtProc(processor);
  const harness = new EnvoyHarness({
    extProc: target,
    upstreamOverride: () => ({ host: '127.0.0.1', port: up.port, tls: false }),
    ...harnessOpts,
  });
  const base = await harness.listen();
  cleanups.push(
    () => up.close(),
    () => server.shutdown(100),
    () => harness.close(),
  );
  return { up, server, harness, base };
}

/** A processor written by hand, per test: `answer` gets each request in order. */
function scripted(answer: (req: ProcessingRequest, n: number) => ProcessingResponse): () => StreamProcessor {
  return () => {
    let n = 0;
    return { onMessage: (req) => answer(req, n++), onEnd: () => {} };
  };
}

const CONT = { response: { status: 'CONTINUE' as const } };
const contFor = (req: ProcessingRequest): ProcessingResponse =>
  ({ [req.request!]: CONT }) as ProcessingResponse;
const ALL_SIX = (response_body_mode: 'NONE' | 'STREAMED' | 'BUFFERED') => ({
  request_header_mode: 'SEND' as const,
  response_header_mode: 'SEND' as const,
  request_body_mode: 'NONE' as const,
  response_body_mode,
  request_trailer_mode: 'SKIP' as const,
  response_trailer_mode: 'SKIP' as const,
});

describe('no-op ext_proc server through the harness', () => {
  it('passes a JSON request and response through all four phases without a violation', async () => {
    const seen: string[] = [];
    const { harness, base, up } = await setup(
      () => {
        const p = noopProcessor();
        return { onMessage: (r, io) => (seen.push(r.request!), p.onMessage(r, io)), onEnd: p.onEnd };
      },
      { processingMode: { response_body_mode: 'BUFFERED' } },
    );
    const r = await post(`${base}/v1/chat/completions`, '{"model":"x","messages":[]}');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ echo: '{"model":"x","messages":[]}', path: '/v1/chat/completions' });
    expect(seen).toEqual(['request_headers', 'request_body', 'response_headers', 'response_body']);
    expect(up.seen[0]!.headers['x-request-id']).toBeTruthy();
    expect(harness.violations).toEqual([]);
  });

  it('streams SSE chunk by chunk with several chunks in flight and an empty last chunk', async () => {
    const bodies: { len: number; eos: boolean }[] = [];
    const { harness, base } = await setup(
      () => ({
        onMessage: (r) => {
          if (r.request === 'response_body')
            bodies.push({ len: r.response_body!.body?.length ?? 0, eos: !!r.response_body!.end_of_stream });
          return contFor(r);
        },
        onEnd: () => {},
      }),
      {
        processingMode: { response_body_mode: 'STREAMED' },
        rechunk: (c) => [c.subarray(0, 3), c.subarray(3)],
      },
    );
    const r = await post(`${base}/stream`, '{}');
    expect(r.text).toContain('data: [DONE]');
    expect(r.text.match(/data: \{"n":\d\}/g)).toHaveLength(5);
    expect(bodies.at(-1)).toEqual({ len: 0, eos: true });
    expect(bodies.length).toBeGreaterThan(6);
    expect(harness.violations).toEqual([]);
  });

  it('sends header values as raw_value bytes with lower-case keys, pseudo-headers included', async () => {
    let headersMsg: ProcessingRequest | undefined;
    const { base, harness } = await setup(
      scripted((r) => {
        if (r.request === 'request_headers') headersMsg = r;
        return contFor(r);
      }),
    );
    await post(`${base}/v1/models`, '{}', { 'X-Custom-Thing': 'A b' });
    const hs = headersMsg!.request_headers!.headers!.headers!;
    expect(hs.every((h) => h.key === h.key.toLowerCase())).toBe(true);
    expect(hs.find((h) => h.key === ':path')!.raw_value).toEqual(Buffer.from('/v1/models'));
    expect(hs.find((h) => h.key === 'x-custom-thing')!.raw_value!.toString()).toBe('A b');
    expect(hs.every((h) => !h.value)).toBe(true);
    expect(harness.violations).toEqual([]);
  });
});

describe('the harness enforces what Envoy enforces', () => {
  it('flags an answer of the wrong kind', async () => {
    const { harness, base } = await setup(
      scripted((r) => (r.request === 'request_headers' ? { request_body: CONT } : contFor(r))),
    );
    await post(`${base}/x`, '{}');
    expect(harness.violations.join('\n')).toMatch(/wrong kind: got request_body for request_headers/);
  });

  it('fails the request when value and raw_value are both set', async () => {
    const { harness, base } = await setup(
      scripted((r) =>
        r.request === 'request_headers'
          ? {
              request_headers: {
                response: {
                  header_mutation: {
                    set_headers: [{ header: { key: 'x-a', value: 'v', raw_value: Buffer.from('v') } }],
                  },
                },
              },
            }
          : contFor(r),
      ),
    );
    const res = await post(`${base}/x`, '{}');
    expect(res.status).toBe(500);
    expect(harness.violations.join('\n')).toMatch(/both value and raw_value/);
  });

  it('flags value used instead of raw_value', async () => {
    const { harness, base } = await setup(
      scripted((r) =>
        r.request === 'request_headers'
          ? {
              request_headers: {
                response: { header_mutation: { set_headers: [{ header: { key: 'x-a', value: 'v' } }] } },
              },
            }
          : contFor(r),
      ),
    );
    await post(`${base}/x`, '{}');
    expect(harness.violations.join('\n')).toMatch(/value is set; Envoy \(1.32\+\) reads raw_value only/);
  });

  it('fails the request when content-length does not match a replaced BUFFERED body', async () => {
    const { harness, base } = await setup(
      scripted((r) =>
        r.request === 'request_body'
          ? { request_body: { response: { body_mutation: { body: Buffer.from('{"changed":true}') } } } }
          : contFor(r),
      ),
    );
    const res = await post(`${base}/x`, '{}');
    expect(res.status).toBe(500);
    expect(harness.violations.join('\n')).toMatch(
      /content-length 2 does not match the replaced BUFFERED body \(16 bytes\)/,
    );
  });

  it('accepts a replaced BUFFERED body with a matching content-length', async () => {
    const nb = Buffer.from('{"changed":true}');
    const { harness, base, up } = await setup(
      scripted((r) =>
        r.request === 'request_body'
          ? {
              request_body: {
                response: {
                  header_mutation: headerMutation({ 'content-length': String(nb.length) }),
                  body_mutation: { body: nb },
                },
              },
            }
          : contFor(r),
      ),
    );
    const res = await post(`${base}/x`, '{}');
    expect(res.status).toBe(200);
    expect(up.seen[0]!.body.toString()).toBe('{"changed":true}');
    expect(harness.violations).toEqual([]);
  });

  it('flags clear_route_cache without a header mutation', async () => {
    const { harness, base } = await setup(
      scripted((r) =>
        r.request === 'request_body'
          ? { request_body: { response: { clear_route_cache: true } } }
          : contFor(r),
      ),
    );
    await post(`${base}/x`, '{}');
    expect(harness.violations.join('\n')).toMatch(/clear_route_cache without a header_mutation/);
  });

  it('flags a mode_override with fields missing, and one outside a headers answer', async () => {
    const { harness, base } = await setup(
      scripted((r) => {
        if (r.request === 'response_headers')
          return { response_headers: CONT, mode_override: { response_body_mode: 'STREAMED' } as never };
        if (r.request === 'request_body') return { request_body: CONT, mode_override: ALL_SIX('NONE') };
        return contFor(r);
      }),
    );
    await post(`${base}/x`, '{}');
    const v = harness.violations.join('\n');
    expect(v).toMatch(
      /mode_override in the response_headers answer lacks request_header_mode, response_header_mode, request_body_mode, request_trailer_mode, response_trailer_mode/,
    );
    expect(v).toMatch(/mode_override in a request_body answer/);
  });

  it('accepts a mode_override with all six fields (zero values included) and honours it', async () => {
    const bodies: number[] = [];
    const { harness, base } = await setup(
      scripted((r) => {
        if (r.request === 'response_headers')
          return { response_headers: CONT, mode_override: ALL_SIX('STREAMED') };
        if (r.request === 'response_body') bodies.push(r.response_body!.body?.length ?? 0);
        return contFor(r);
      }),
    );
    const res = await post(`${base}/stream`, '{}');
    expect(res.text).toContain('[DONE]');
    expect(bodies.length).toBeGreaterThan(1);
    expect(harness.violations).toEqual([]);
  });

  it('flags a spurious extra answer and a header mutation in a STREAMED body answer', async () => {
    const { harness, base } = await setup(
      () => ({
        onMessage: (r) => {
          if (r.request === 'response_body')
            return { response_body: { response: { header_mutation: headerMutation({ 'x-late': '1' }) } } };
          return contFor(r);
        },
        onEnd: () => {},
      }),
      { processingMode: { response_body_mode: 'STREAMED' } },
    );
    await post(`${base}/stream`, '{}');
    expect(harness.violations.join('\n')).toMatch(
      /header_mutation in a STREAMED response_body answer is ignored/,
    );
  });

  it('flags routing-header changes the mutation rules reject, and x-envoy-* headers', async () => {
    const { harness, base } = await setup(
      scripted((r) =>
        r.request === 'request_headers'
          ? {
              request_headers: {
                response: {
                  header_mutation: {
                    set_headers: [setHeader(':authority', 'example.com'), setHeader('x-envoy-foo', '1')],
                    remove_headers: [':path'],
                  },
                },
              },
            }
          : contFor(r),
      ),
      { allowAllRouting: false },
    );
    await post(`${base}/x`, '{}');
    const v = harness.violations.join('\n');
    expect(v).toMatch(/set :authority rejected by mutation rules/);
    expect(v).toMatch(/set x-envoy-foo rejected/);
    expect(v).toMatch(/remove_headers :path: pseudo-headers and host cannot be removed/);
  });

  it('answers 500 quickly (fail closed) when the server fails the stream, 504 on a message timeout', async () => {
    const { harness, base } = await setup(
      () => ({
        onMessage: (r) => {
          if (r.request === 'request_body') return new Promise<ProcessingResponse>(() => {});
          return contFor(r);
        },
        onEnd: () => {},
      }),
      { messageTimeoutMs: 150 },
    );
    const t0 = Date.now();
    const res = await post(`${base}/x`, '{}');
    expect(res.status).toBe(504);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(harness.violations.join('\n')).toMatch(/message timeout/);
  });

  it('fails closed with a local 500 when the ext_proc server is unreachable', async () => {
    const harness = new EnvoyHarness({ extProc: 'unix:/nonexistent/tierflow.sock' });
    const base = await harness.listen();
    cleanups.push(() => harness.close());
    const t0 = Date.now();
    const res = await post(`${base}/x`, '{}');
    expect(res.status).toBe(500);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('ext_proc server', () => {
  it('serves grpc.health.v1 and turns NOT_SERVING on shutdown, letting an open stream finish', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { server, target } = await startExtProc(() => ({
      onMessage: async (r) => {
        if (r.request === 'request_body') await gate;
        return contFor(r);
      },
      onEnd: () => {},
    }));
    const Health = grpc.makeGenericClientConstructor(healthService(), 'Health');
    const client = new Health(target, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      Check: (req: object, cb: (e: grpc.ServiceError | null, r: { status: string }) => void) => void;
    };
    const check = (service: string) =>
      new Promise<string>((resolve, reject) =>
        client.Check({ service }, (e, r) => (e ? reject(e) : resolve(r.status))),
      );
    expect(await check('')).toBe('SERVING');
    expect(await check('envoy.service.ext_proc.v3.ExternalProcessor')).toBe('SERVING');
    await expect(check('nope')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });

    const up = await startUpstream((_q, _b, res) => res.end('ok'));
    const harness = new EnvoyHarness({
      extProc: target,
      upstreamOverride: () => ({ host: '127.0.0.1', port: up.port, tls: false }),
    });
    const base = await harness.listen();
    const inflight = post(`${base}/x`, '{}');
    while (server.activeStreams === 0) await new Promise((r) => setTimeout(r, 5));
    const closing = server.shutdown(5000);
    expect(server.health.status('')).toBe('NOT_SERVING');
    await new Promise((r) => setTimeout(r, 50));
    release();
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(res.text).toBe('ok');
    await closing;
    client.close();
    await harness.close();
    await up.close();
    expect(harness.violations).toEqual([]);
  });

  it('accepts a request body of the promised size (above gRPC’s 4 MiB default)', async () => {
    const { harness, base, up } = await setup(() => noopProcessor());
    const big = Buffer.alloc(6 * 1024 * 1024, 'a');
    const res = await post(`${base}/x`, big);
    expect(res.status).toBe(200);
    expect(up.seen[0]!.body.length).toBe(big.length);
    expect(harness.violations).toEqual([]);
  });

  it('keeps answering 300 concurrent streams whose bodies all arrive at once (Envoy-sized windows)', async () => {
    // Envoy opens 256 MiB windows and sends each body as soon as the headers answer is back:
    // many streams' bodies land together while the server is busy with others.
    const { server, target } = await startExtProc(() => ({
      onMessage: (r) => {
        if (r.request === 'request_body') {
          const until = performance.now() + 0.2; // some work per body, like a routing decision
          while (performance.now() < until);
        }
        return contFor(r);
      },
      onEnd: () => {},
    }));
    cleanups.push(() => server.shutdown(100));
    const session = http2.connect('http://localhost', {
      createConnection: () => net.connect(target.slice('unix:'.length)),
      settings: { initialWindowSize: 2 ** 28 },
    });
    session.on('connect', () => session.setLocalWindowSize(2 ** 28));
    cleanups.push(() => void session.destroy());
    const frame = (m: object) => {
      const b = extProcCodec().encodeRequest(m as ProcessingRequest);
      const h = Buffer.alloc(5);
      h.writeUInt32BE(b.length, 1);
      return Buffer.concat([h, b]);
    };
    const headersMsg = frame({
      request_headers: {
        headers: { headers: [{ key: ':path', raw_value: Buffer.from('/v1/chat/completions') }] },
      },
    });
    const bodyMsg = frame({ request_body: { body: Buffer.alloc(4500, 'x'), end_of_stream: true } });
    const one = () =>
      new Promise<void>((resolve, reject) => {
        const st = session.request({
          ':method': 'POST',
          ':path': '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        let bytes = 0;
        st.on('data', (c: Buffer) => {
          const before = bytes;
          bytes += c.length;
          // like Envoy in BUFFERED mode: the body goes out once the headers answer came back
          if (before === 0) st.write(bodyMsg);
          if (bytes >= 2 * 7) {
            st.close();
            resolve();
          }
        });
        st.on('error', reject);
        st.write(headersMsg);
      });
    const all = Promise.all(Array.from({ length: 300 }, one));
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('streams hung')), 10_000));
    await expect(Promise.race([all, timeout])).resolves.toBeDefined();
  });

  it('answers with a clear local 500 when a processor throws (never a failed stream)', async () => {
    const { harness, base } = await setup(
      scripted((r) => {
        if (r.request === 'request_body') throw new Error('boom');
        return contFor(r);
      }),
    );
    const res = await post(`${base}/x`, '{}');
    expect(res.status).toBe(500);
    expect(JSON.parse(res.text).error.code).toBe('tierflow_internal_error');
    expect(harness.grpcErrors).toEqual([]);
    expect(harness.violations).toEqual([]);
  });
});

describe('fast codec', () => {
  it('encodes answers (hand-written Struct included) exactly as the real protos decode them', () => {
    const c = extProcCodec();
    const m = (
      extProcService() as unknown as Record<
        string,
        { responseDeserialize: (b: Buffer) => unknown; requestSerialize: (v: unknown) => Buffer }
      >
    ).Process!;
    const res: ProcessingResponse = {
      request_body: {
        response: {
          status: 'CONTINUE',
          header_mutation: {
            set_headers: [
              setHeader(':path', '/v1/messages'),
              { header: { key: 'x-a', raw_value: Buffer.from('é') }, append: { value: true } },
            ],
            remove_headers: ['authorization'],
          },
          body_mutation: { body: Buffer.from('{}') },
          clear_route_cache: true,
        },
      },
      mode_override: {
        request_header_mode: 'SEND',
        response_header_mode: 'DEFAULT',
        request_body_mode: 'BUFFERED',
        response_body_mode: 'STREAMED',
        request_trailer_mode: 'SKIP',
        response_trailer_mode: 'SKIP',
      },
      dynamic_metadata: {
        fields: {
          tierflow: {
            structValue: {
              fields: {
                model: { stringValue: 'gpt-4o-mini' },
                cost: { numberValue: 0.000123 },
                ok: { boolValue: true },
                none: { nullValue: 'NULL_VALUE' },
                nested: { structValue: { fields: { ü: { numberValue: -2.5 } } } },
              },
            },
          },
        },
      },
    };
    const back = m.responseDeserialize(c.encodeResponse(res)) as Record<string, any>;
    expect(back.response).toBe('request_body');
    expect(back.request_body.response.clear_route_cache).toBe(true);
    expect(back.request_body.response.header_mutation.set_headers[1].append.value).toBe(true);
    expect(back.request_body.response.header_mutation.set_headers[1].header.raw_value).toEqual(
      Buffer.from('é'),
    );
    expect(back.mode_override).toEqual({
      request_header_mode: 'SEND',
      response_header_mode: 'DEFAULT',
      request_body_mode: 'BUFFERED',
      response_body_mode: 'STREAMED',
      request_trailer_mode: 'SKIP',
      response_trailer_mode: 'SKIP',
    });
    const md = back.dynamic_metadata.fields.tierflow.structValue.fields;
    expect(md.model.stringValue).toBe('gpt-4o-mini');
    expect(md.cost.numberValue).toBe(0.000123);
    expect(md.ok.boolValue).toBe(true);
    expect(md.none.nullValue).toBe('NULL_VALUE');
    expect(md.nested.structValue.fields['ü'].numberValue).toBe(-2.5);

    const req = c.decodeRequest(
      m.requestSerialize({ response_body: { body: Buffer.from('abc'), end_of_stream: true } }),
    );
    expect(req.request).toBe('response_body');
    expect(Buffer.from(req.response_body!.body!).toString()).toBe('abc');
    expect(req.response_body!.end_of_stream).toBe(true);
  });
});
