// The hot-path codec for Process messages. proto-loader (protos.ts) loads the service; its
// default (de)serializers convert every message to and from plain objects field by field
// (fromObject / toObject), which costs more than the protobuf work itself. Here the same protos
// are loaded with protobufjs reflection (what proto-loader is built on) and used directly:
//   decode: ProcessingRequest.decode -> message objects with snake_case fields, bytes as Buffers,
//           the oneof name in `request` (exactly the shape types.ts describes)
//   encode: enum names -> numbers in the few enum fields we write, then ProcessingResponse.encode
//           on the plain answer object (no intermediate message objects)
import { existsSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { encodeAnswer } from './answer-encoder.js';
import { EXT_PROC_METHOD_PATH, EXT_PROC_PROTO, EXT_PROC_SERVICE, envoyProtoDirs } from './protos.js';
import type { PbStruct, ProcessingRequest, ProcessingResponse } from './types.js';

// google.protobuf.Struct written by hand: protobufjs encodes map fields through a writer fork per
// entry, which made the dynamic metadata cost more than the rest of an answer. Two passes: the
// first measures every length-delimited part once, in the order the second one writes them (a
// nested struct's size is known only after its fields, so its slot is reserved first and filled
// after); the second writes the bytes into one buffer. Wire format:
//   Struct { map<string, Value> fields = 1 }   (each entry: key = 1, value = 2)
//   Value  { null_value = 1 (varint); number_value = 2 (double); string_value = 3;
//            bool_value = 4 (varint); struct_value = 5 }
const varintSize = (n: number) => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);
const ldSize = (n: number) => 1 + varintSize(n) + n;

/**
 * Sizes of `s`, appended to `sizes` in writing order: per entry its size, its key's byte length,
 * its Value's size, then (string) the string's byte length or (struct) the nested struct's
 * content size followed by its own sizes. Returns the size of the struct's content.
 */
function measureStruct(s: PbStruct, sizes: number[]): number {
  let total = 0;
  for (const key in s.fields) {
    const v = s.fields[key]!;
    const slot = sizes.length;
    sizes.push(0, Buffer.byteLength(key), 0);
    let valueSize: number;
    if ('stringValue' in v) {
      const n = Buffer.byteLength(v.stringValue);
      sizes.push(n);
      valueSize = ldSize(n);
    } else if ('numberValue' in v) valueSize = 9;
    else if ('structValue' in v) {
      const inner = sizes.length;
      sizes.push(0);
      const n = measureStruct(v.structValue, sizes);
      sizes[inner] = n;
      valueSize = ldSize(n);
    } else valueSize = 2; // bool or null
    const entrySize = ldSize(sizes[slot + 1]!) + ldSize(valueSize);
    sizes[slot] = entrySize;
    sizes[slot + 2] = valueSize;
    total += ldSize(entrySize);
  }
  return total;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/** Writes `s` at `pos` with the sizes measureStruct gave from index `at`; returns [pos, at] after it. */
function writeStruct(buf: Buffer, pos: number, s: PbStruct, sizes: number[], at: number): [number, number] {
  for (const key in s.fields) {
    const v = s.fields[key]!;
    buf[pos++] = 0x0a; // fields = 1 (a map entry)
    pos = writeVarint(buf, pos, sizes[at]!);
    buf[pos++] = 0x0a; // key = 1
    pos = writeVarint(buf, pos, sizes[at + 1]!);
    pos += buf.write(key, pos, 'utf8');
    buf[pos++] = 0x12; // value = 2
    pos = writeVarint(buf, pos, sizes[at + 2]!);
    at += 3;
    if ('stringValue' in v) {
      buf[pos++] = 0x1a;
      pos = writeVarint(buf, pos, sizes[at++]!);
      pos += buf.write(v.stringValue, pos, 'utf8');
    } else if ('numberValue' in v) {
      buf[pos++] = 0x11;
      pos = buf.writeDoubleLE(v.numberValue, pos);
    } else if ('boolValue' in v) {
      buf[pos++] = 0x20;
      buf[pos++] = v.boolValue ? 1 : 0;
    } else if ('structValue' in v) {
      buf[pos++] = 0x2a;
      pos = writeVarint(buf, pos, sizes[at++]!);
      [pos, at] = writeStruct(buf, pos, v.structValue, sizes, at);
    } else {
      buf[pos++] = 0x08; // null_value: NULL_VALUE
      buf[pos++] = 0x00;
    }
  }
  return [pos, at];
}

/** The Struct `s` encoded on its own. */
export function structBytes(s: PbStruct): Buffer {
  const sizes: number[] = [];
  const out = Buffer.allocUnsafe(measureStruct(s, sizes));
  writeStruct(out, 0, s, sizes, 0);
  return out;
}

interface Codec {
  decodeRequest(buf: Buffer): ProcessingRequest;
  encodeResponse(res: ProcessingResponse): Buffer;
  /** protobufjs's encoding of any answer (the reference the hand encoder is tested against). */
  encodeResponseWithProtobufjs(res: ProcessingResponse): Buffer;
  encodeRequest(req: ProcessingRequest): Buffer;
  decodeResponse(buf: Buffer): ProcessingResponse;
  /** The Process method as the proto declares it. */
  process: { path: string; requestStream: boolean; responseStream: boolean };
}

let codec: Codec | undefined;

export function extProcCodec(): Codec {
  if (codec) return codec;
  const dirs = envoyProtoDirs();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const d of dirs) {
      const p = path.join(d, target);
      if (existsSync(p)) return p;
    }
    return target; // google/protobuf/*: bundled with protobufjs
  };
  root.loadSync(EXT_PROC_PROTO, { keepCase: true });
  root.resolveAll();
  const Req = root.lookupType('envoy.service.ext_proc.v3.ProcessingRequest');
  const Res = root.lookupType('envoy.service.ext_proc.v3.ProcessingResponse');
  const headerMode = root.lookupEnum(
    'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode',
  ).values;
  const bodyMode = root.lookupEnum(
    'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode',
  ).values;
  const status = root.lookupEnum('envoy.service.ext_proc.v3.CommonResponse.ResponseStatus').values;
  const httpStatus = root.lookupEnum('envoy.type.v3.StatusCode').values;

  const num = (values: Record<string, number>, v: unknown): unknown =>
    typeof v === 'string' ? (values[v] ?? v) : v;
  const MODE_FIELDS = [
    ['request_header_mode', headerMode],
    ['response_header_mode', headerMode],
    ['request_body_mode', bodyMode],
    ['response_body_mode', bodyMode],
    ['request_trailer_mode', headerMode],
    ['response_trailer_mode', headerMode],
  ] as const;
  const MEMBERS = ['request_headers', 'response_headers', 'request_body', 'response_body'] as const;

  /** Enum names -> numbers, in place and idempotent (shared constant answers are fine). */
  type Loose = { status?: unknown };
  const normalize = (res: ProcessingResponse): ProcessingResponse => {
    for (const m of MEMBERS) {
      const common = res[m]?.response as Loose | undefined;
      if (common && typeof common.status === 'string') common.status = num(status, common.status);
    }
    const mo = res.mode_override as Record<string, unknown> | undefined;
    if (mo) for (const [f, values] of MODE_FIELDS) if (typeof mo[f] === 'string') mo[f] = num(values, mo[f]);
    const imm = res.immediate_response as { status?: { code: unknown } } | undefined;
    if (imm?.status && typeof imm.status.code === 'string')
      imm.status.code = num(httpStatus, imm.status.code);
    return res;
  };

  /**
   * ProcessingResponse.dynamic_metadata is field 8: its Struct is written by hand (structBytes) and
   * added to the same writer as a length-delimited field (fields may come in any order), so the
   * answer is assembled once, without copying the encoded head (and the body in it) again.
   */
  const encodeWithProtobufjs = (res: ProcessingResponse): Buffer => {
    const md = res.dynamic_metadata;
    if (!md) return Res.encode(normalize(res)).finish() as Buffer;
    res.dynamic_metadata = undefined; // skipped by the encoder (null/undefined fields are not written)
    const writer = Res.encode(normalize(res));
    res.dynamic_metadata = md;
    return writer
      .uint32((8 << 3) | 2)
      .bytes(structBytes(md))
      .finish() as Buffer;
  };

  /** The answers of every request by hand (answer-encoder.ts), anything else with protobufjs. */
  const encodeResponse = (res: ProcessingResponse): Buffer =>
    encodeAnswer(normalize(res), structBytes) ?? encodeWithProtobufjs(res);

  const service = root.lookupService(EXT_PROC_SERVICE);
  const method = service.methods.Process!;
  codec = {
    process: {
      path: EXT_PROC_METHOD_PATH,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
    },
    decodeRequest: (buf) => Req.decode(buf) as unknown as ProcessingRequest,
    encodeResponse,
    encodeResponseWithProtobufjs: encodeWithProtobufjs,
    encodeRequest: (req) => Req.encode(req).finish() as Buffer,
    decodeResponse: (buf) => Res.decode(buf) as unknown as ProcessingResponse,
  };
  return codec;
}

/**
 * The ExternalProcessor service for the grpc-js server, built from the same protobufjs root as the
 * codec. (proto-loader's package definition of the Envoy protos would hold a second copy of every
 * descriptor, about 7 MB of RSS, for nothing the server uses.)
 */
export function fastExtProcService(): ServiceDefinition {
  const c = extProcCodec();
  return {
    Process: {
      ...c.process,
      originalName: 'process',
      requestSerialize: (r: ProcessingRequest) => c.encodeRequest(r),
      requestDeserialize: (b: Buffer) => c.decodeRequest(b),
      responseSerialize: (r: ProcessingResponse) => c.encodeResponse(r),
      responseDeserialize: (b: Buffer) => c.decodeResponse(b),
    },
  } as unknown as ServiceDefinition;
}
