// The hot-path codec for Process messages. proto-loader (protos.ts) loads the service; its
// default (de)serializers convert every message to and from plain objects field by field
// (fromObject / toObject), which costs more than the protobuf work itself. Here the same protos
// are loaded with protobufjs reflection (what proto-loader is built on) and used directly:
//   decode: the messages of every request by hand (request-decoder.ts: the headers straight into
//           a record), anything else with ProcessingRequest.decode -> message objects with
//           snake_case fields, bytes as Buffers, the oneof name in `request` (types.ts's shape)
//   encode: enum names -> numbers in the few enum fields we write, then ProcessingResponse.encode
//           on the plain answer object (no intermediate message objects)
import { existsSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { SplicedBody } from '../core/raw-json.js';
import { encodeAnswer } from './answer-encoder.js';
import { decodeRequest, type ProtobufjsDecoders } from './request-decoder.js';
import { structBytes } from './struct-encoder.js';
import { EXT_PROC_METHOD_PATH, EXT_PROC_PROTO, EXT_PROC_SERVICE, envoyProtoDirs } from './protos.js';
import type { HeaderMap as HeaderMapMessage, ProcessingRequest, ProcessingResponse } from './types.js';

interface Codec {
  decodeRequest(buf: Buffer): ProcessingRequest;
  /** protobufjs's decoding of any request (the reference the hand decoder is tested against). */
  decodeRequestWithProtobufjs(buf: Buffer): ProcessingRequest;
  encodeResponse(res: ProcessingResponse): Buffer;
  /**
   * encodeResponse for grpc-js: the bytes may be a view of a buffer the next call writes over.
   * grpc-js's serializer copies them into the message frame at once (serializeMessage in
   * server-interceptors; service-definition.test.ts fails if a grpc-js release stops doing so).
   */
  serializeResponse(res: ProcessingResponse): Buffer;
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

  /** SplicedBody mutations -> buffers, in place (protobufjs writes only bytes). */
  const materializeBodies = (res: ProcessingResponse): void => {
    for (const m of MEMBERS) {
      const bm = res[m]?.response?.body_mutation;
      if (bm?.body instanceof SplicedBody) bm.body = bm.body.bytes();
    }
  };

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
    materializeBodies(res);
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
    encodeAnswer(normalize(res)) ?? encodeWithProtobufjs(res);

  const HeaderMap = root.lookupType('envoy.config.core.v3.HeaderMap');
  const decodeWithProtobufjs = (buf: Buffer) => Req.decode(buf) as unknown as ProcessingRequest;
  const protobufjsDecoders: ProtobufjsDecoders = {
    request: decodeWithProtobufjs,
    headerMap: (buf) => HeaderMap.decode(buf) as unknown as HeaderMapMessage,
  };

  const service = root.lookupService(EXT_PROC_SERVICE);
  const method = service.methods.Process!;
  codec = {
    process: {
      path: EXT_PROC_METHOD_PATH,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
    },
    decodeRequest: (buf) => decodeRequest(buf, protobufjsDecoders) ?? decodeWithProtobufjs(buf),
    decodeRequestWithProtobufjs: decodeWithProtobufjs,
    encodeResponse,
    serializeResponse: (res) => encodeAnswer(normalize(res), true) ?? encodeWithProtobufjs(res),
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
      responseSerialize: (r: ProcessingResponse) => c.serializeResponse(r),
      responseDeserialize: (b: Buffer) => c.decodeResponse(b),
    },
  } as unknown as ServiceDefinition;
}

export { structBytes };
