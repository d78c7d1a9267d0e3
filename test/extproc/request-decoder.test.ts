// The hand-written request decoder against protobufjs + headersToRecord: seeded random messages
// (unknown fields at every level, legacy `value`, repeated keys and fields, empty values,
// non-ASCII bytes, other top-level fields, shapes it leaves to protobufjs, damaged bytes) decode
// to the same request and the same header record.
import { describe, expect, it } from 'vitest';
import { extProcCodec } from '../../src/extproc/codec.js';
import { heldHeaderValues } from '../../src/extproc/header-strings.js';
import { headersToRecord } from '../../src/extproc/headers.js';
import type { HttpBody, HttpHeaders, ProcessingRequest } from '../../src/extproc/types.js';
import { seededRandom } from '../helpers/prng.js';

const c = extProcCodec();

// --- a protobuf writer over byte arrays -------------------------------------------------------

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const tag = (field: number, wireType: number) => varint(field * 8 + wireType);
const ld = (field: number, bytes: ArrayLike<number>) => [
  ...tag(field, 2),
  ...varint(bytes.length),
  ...Array.from(bytes),
];
const vi = (field: number, n: number) => [...tag(field, 0), ...varint(n)];
const utf8 = (s: string) => [...Buffer.from(s, 'utf8')];

function generator(seed: number) {
  const rnd = seededRandom(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const chance = (p: number) => rnd() < p;

  const NAMES = [
    ':authority',
    ':path',
    ':method',
    ':scheme',
    ':status',
    'content-type',
    'content-length',
    'user-agent',
    'accept',
    'x-request-id',
    'authorization',
    'set-cookie',
    'cookie',
    'x-api-key',
    'Content-Type',
    'X-Mixed-Case',
    'x-tierflow-model',
    '',
    'ünïcode-name',
    'x-dup',
    '__proto__',
    'constructor',
    'date',
  ];
  const VALUES = [
    'application/json',
    '/v1/chat/completions',
    'POST',
    'https',
    '',
    'a',
    'b',
    'same',
    'samf',
    'Bearer sk-x',
  ];

  const randomBytes = (n: number) => Array.from({ length: n }, () => int(256));
  const value = (): number[] =>
    chance(0.6) ? utf8(pick(VALUES)) : chance(0.5) ? randomBytes(int(40)) : utf8('välue ✓ ' + int(1000));

  /** An unknown field of any wire type, its number above the known ones. */
  const unknown = (above: number): number[] => {
    const f = above + 1 + int(40);
    switch (int(4)) {
      case 0:
        return vi(f, int(1 << 20));
      case 1:
        return [...tag(f, 1), ...randomBytes(8)];
      case 2:
        return ld(f, randomBytes(int(12)));
      default:
        return [...tag(f, 5), ...randomBytes(4)];
    }
  };

  const headerValue = (): number[] => {
    const parts: number[][] = [];
    // Many names: some share a slot of the string table and push each other out.
    if (chance(0.95)) parts.push(ld(1, utf8(chance(0.2) ? `x-h${int(3000)}` : pick(NAMES))));
    if (chance(0.85)) parts.push(ld(3, value()));
    if (chance(0.15)) parts.push(ld(2, utf8(pick(VALUES) + (chance(0.5) ? ' ü' : ''))));
    if (chance(0.1)) parts.push(ld(3, [])); // raw_value given empty: `value` (or '') counts
    if (chance(0.1)) parts.push(ld(1, utf8(pick(NAMES)))); // a field twice: the last counts
    if (chance(0.1)) parts.push(unknown(3));
    if (chance(0.3)) parts.reverse();
    return parts.flat();
  };

  const headerMap = (): number[] => {
    const out: number[] = [];
    const n = int(14);
    for (let i = 0; i < n; i++) {
      out.push(...ld(1, headerValue()));
      if (chance(0.03)) out.push(...unknown(1));
    }
    return out;
  };

  const httpHeaders = (): number[] => {
    const parts: number[][] = [];
    if (chance(0.95)) parts.push(ld(1, headerMap()));
    if (chance(0.7)) parts.push(vi(3, pick([0, 1, 2, 300])));
    if (chance(0.08)) parts.push(unknown(3));
    if (chance(0.03)) parts.push(ld(2, ld(1, utf8('k')))); // deprecated attributes: protobufjs
    if (chance(0.02)) parts.push(ld(1, headerMap())); // a second HeaderMap: protobufjs
    if (chance(0.2)) parts.reverse();
    return parts.flat();
  };

  const httpBody = (): number[] => {
    const parts: number[][] = [];
    if (chance(0.9)) parts.push(ld(1, chance(0.1) ? [] : randomBytes(int(300))));
    if (chance(0.7)) parts.push(vi(2, pick([0, 1, 5])));
    if (chance(0.05)) parts.push(ld(1, randomBytes(3)));
    if (chance(0.08)) parts.push(unknown(2));
    if (chance(0.2)) parts.reverse();
    return parts.flat();
  };

  /** Top-level fields besides the member, as protobufjs writes them, plus unknown ones. */
  const others = (): number[][] => {
    const parts: number[][] = [];
    if (chance(0.3))
      parts.push([...c.encodeRequest({ observability_mode: chance(0.5) } as ProcessingRequest)]);
    if (chance(0.2))
      parts.push([
        ...c.encodeRequest({
          metadata_context: { filter_metadata: { ns: { fields: { a: { stringValue: 'x' } } } } },
          attributes: {
            'envoy.filters.http.ext_proc': { fields: { 'request.path': { stringValue: '/p' } } },
          },
        } as unknown as ProcessingRequest),
      ]);
    if (chance(0.2)) parts.push(ld(11, randomBytes(int(10)))); // protocol_config of newer protos
    if (chance(0.1)) parts.push(unknown(11));
    return parts;
  };

  return (): Buffer => {
    const f = 2 + int(4);
    const member = ld(f, f <= 3 ? httpHeaders() : httpBody());
    const parts = [member, ...others()];
    if (chance(0.03)) parts.push(ld(6 + int(2), ld(1, headerMap()))); // trailers: protobufjs
    if (chance(0.02)) parts.push(ld(2 + int(4), [])); // a second member: protobufjs
    if (chance(0.3)) parts.reverse();
    const bytes = Buffer.from(parts.flat());
    if (chance(0.04)) return bytes.subarray(0, int(bytes.length)); // cut short
    if (chance(0.04)) {
      const damaged = Buffer.from(bytes);
      if (damaged.length > 0) damaged[int(damaged.length)] = int(256);
      return damaged;
    }
    return bytes;
  };
}

// --- comparison -----------------------------------------------------------------------------

type Outcome = { error: string } | { value: unknown };

// protobufjs leaves absent members null (its prototype's default), the decoder undefined.
function headersView(h: HttpHeaders | null | undefined, own: boolean) {
  if (!h) return undefined;
  const list = h.headers?.headers?.map((v) => ({
    key: v.key,
    value: v.value || undefined,
    raw: v.raw_value && v.raw_value.length > 0 ? Buffer.from(v.raw_value).toString('hex') : undefined,
  }));
  return {
    end_of_stream: h.end_of_stream === true,
    list,
    record: { ...(own && h.record ? h.record : headersToRecord(h.headers)) },
  };
}

function bodyView(b: HttpBody | null | undefined) {
  if (!b) return undefined;
  return { body: Buffer.from(b.body ?? []).toString('hex'), end_of_stream: b.end_of_stream === true };
}

function view(req: ProcessingRequest, own: boolean): unknown {
  const r = req as ProcessingRequest & { metadata_context?: unknown; attributes?: unknown };
  return {
    request: r.request,
    request_headers: headersView(r.request_headers, own),
    response_headers: headersView(r.response_headers, own),
    request_body: bodyView(r.request_body),
    response_body: bodyView(r.response_body),
    request_trailers: r.request_trailers
      ? headersView({ headers: r.request_trailers.trailers }, false)
      : undefined,
    response_trailers: r.response_trailers
      ? headersView({ headers: r.response_trailers.trailers }, false)
      : undefined,
    observability_mode: r.observability_mode === true,
    metadata_context: JSON.stringify(r.metadata_context ?? null),
    attributes: JSON.stringify(r.attributes ?? {}),
  };
}

function outcome(decode: () => ProcessingRequest, own: boolean): Outcome {
  try {
    return { value: view(decode(), own) };
  } catch (err) {
    return { error: String(err) };
  }
}

describe('the hand-written request decoder', () => {
  it('decodes seeded random messages exactly as protobufjs + headersToRecord do', () => {
    let covered = 0;
    let otherFields = 0;
    for (const seed of [1, 2, 3]) {
      const next = generator(seed);
      for (let i = 0; i < 4000; i++) {
        const buf = next();
        const mine = outcome(() => c.decodeRequest(buf), true);
        const ref = outcome(() => c.decodeRequestWithProtobufjs(buf), false);
        expect(mine, `seed ${seed} message ${i}: ${buf.toString('hex')}`).toEqual(ref);
        try {
          const req = c.decodeRequest(buf);
          const member = req.request_headers ?? req.response_headers;
          if (member?.record || (req.request_body ?? req.response_body)) covered++;
          if (member?.record && 'observability_mode' in Object.getPrototypeOf(req)) otherFields++;
        } catch {
          /* damaged: compared above */
        }
      }
    }
    // Most messages are the decoder's own, including some with other top-level fields.
    expect(covered).toBeGreaterThan(8000);
    expect(otherFields).toBeGreaterThan(200);
  });

  it('reads the messages Envoy sends: headers into the record, bodies as views of the message', () => {
    const body = Buffer.from('{"model":"auto"}');
    const hv = (key: string, v: string) => ({ key, raw_value: Buffer.from(v, 'latin1') });
    const headers = c.encodeRequest({
      request_headers: {
        headers: {
          headers: [
            hv(':path', '/v1/chat/completions'),
            hv('accept', 'a'),
            hv('Accept', 'b'),
            hv('set-cookie', 'one'),
            hv('set-cookie', 'two'),
            hv('x-latin', 'caf\xe9'),
            { key: 'x-legacy', value: 'ünï' },
            hv('x-empty', ''),
          ],
        },
        end_of_stream: false,
      },
    });
    const req = c.decodeRequest(headers);
    expect(req.request).toBe('request_headers');
    expect(req.request_headers!.record).toEqual({
      ':path': '/v1/chat/completions',
      accept: 'a, b',
      'set-cookie': 'two',
      'x-latin': 'caf\xe9',
      'x-legacy': 'ünï',
      'x-empty': '',
    });
    expect(Object.getPrototypeOf(req.request_headers!.record)).toBeNull();
    expect(req.request_headers!.headers!.headers![0]!.raw_value).toEqual(Buffer.from('/v1/chat/completions'));

    const msg = c.encodeRequest({ request_body: { body, end_of_stream: true } });
    const decoded = c.decodeRequest(msg);
    expect(decoded).toEqual({ request: 'request_body', request_body: { body, end_of_stream: true } });
    expect(decoded.request_body!.body!.buffer).toBe(msg.buffer); // a view, not a copy
  });

  it('reuses values of repeating headers, never a credential', () => {
    const secrets = {
      authorization: 'Bearer sk-secret-1',
      'proxy-authorization': 'Basic c2VjcmV0',
      cookie: 'session=secret-2',
      'x-api-key': 'secret-3',
      'api-key': 'secret-4',
      'x-goog-api-key': 'secret-5',
      'x-amz-security-token': 'secret-6',
    };
    const msg = c.encodeRequest({
      request_headers: {
        headers: {
          headers: Object.entries({ 'content-type': 'application/json', ...secrets }).map(([key, v]) => ({
            key,
            raw_value: Buffer.from(v),
          })),
        },
      },
    });
    for (let i = 0; i < 3; i++)
      expect(c.decodeRequest(msg).request_headers!.record!['x-api-key']).toBe('secret-3');
    const held = heldHeaderValues();
    expect(held).toContain('application/json');
    for (const v of Object.values(secrets)) expect(held).not.toContain(v);
  });
});
