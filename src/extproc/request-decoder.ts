// The ProcessingRequests of every request decoded by hand (answer-encoder.ts is the other way).
// protobufjs makes a message object per header, a HeaderValue with a Buffer view of its value,
// and headersToRecord then turns each value into a string; here the headers go straight from the
// message bytes into the record the processor reads (`record`: headersToRecord's rules), through
// header-strings.ts, which reuses the strings made last time. It covers:
//   ProcessingRequest { request_headers = 2 | response_headers = 3: HttpHeaders,
//                       request_body = 4 | response_body = 5: HttpBody, anything else }
//   HttpHeaders { headers = 1: HeaderMap { headers = 1: HeaderValue { key = 1, value = 2,
//                 raw_value = 3 } }, end_of_stream = 3 }
//   HttpBody { body = 1 (a view of the message), end_of_stream = 2 }
// Top-level fields besides the member (metadata_context, attributes, observability_mode, fields
// of newer protos) are decoded by protobufjs from their own bytes; the HeaderMap itself only when
// `headers` is read. A message of any other shape (trailers, the deprecated attributes of
// HttpHeaders, a member twice, a wire type or length that does not fit) returns undefined and is
// decoded by protobufjs whole, so what it cannot read is read exactly as before.
import { headerName, headerValue } from './header-strings.js';
import type { HeaderMap, HttpBody, HttpHeaders, ProcessingRequest } from './types.js';

type Slicing = Buffer & { utf8Slice(start: number, end: number): string };

export interface ProtobufjsDecoders {
  /** A ProcessingRequest made only of the given fields. */
  request(bytes: Buffer): ProcessingRequest;
  headerMap(bytes: Buffer): HeaderMap;
}

/** HttpHeaders with the record made while decoding; the HeaderMap is decoded when read. */
class DecodedHeaders implements HttpHeaders {
  readonly #message: Buffer;
  /** [start, end) of the HeaderMap in the message; start -1 without one. */
  readonly #start: number;
  readonly #end: number;
  readonly #decode: (bytes: Buffer) => HeaderMap;
  #map: HeaderMap | undefined;

  constructor(
    readonly end_of_stream: boolean,
    readonly record: Record<string, string>,
    message: Buffer,
    start: number,
    end: number,
    decode: (bytes: Buffer) => HeaderMap,
  ) {
    this.#message = message;
    this.#start = start;
    this.#end = end;
    this.#decode = decode;
  }

  get headers(): HeaderMap | undefined {
    if (this.#start < 0) return undefined;
    this.#map ??= this.#decode(this.#message.subarray(this.#start, this.#end));
    return this.#map;
  }
}

const EMPTY = Buffer.alloc(0);
// The message being decoded and the read position (decoding is synchronous).
let b: Buffer = EMPTY;
let p = 0;

/** A varint below 2^28 at p; -1 when it is longer or runs past `end`. */
function varint(end: number): number {
  if (p >= end) return -1;
  let c = b[p++]!;
  let x = c & 0x7f;
  if (c < 0x80) return x;
  if (p >= end) return -1;
  c = b[p++]!;
  x |= (c & 0x7f) << 7;
  if (c < 0x80) return x;
  if (p >= end) return -1;
  c = b[p++]!;
  x |= (c & 0x7f) << 14;
  if (c < 0x80) return x;
  if (p >= end) return -1;
  c = b[p++]!;
  x |= (c & 0x7f) << 21;
  return c < 0x80 ? x : -1;
}

/** The length of a length-delimited field at p; -1 when it does not fit before `end`. */
function length(end: number): number {
  const n = varint(end);
  return n < 0 || p + n > end ? -1 : n;
}

/** Skips a field of an unknown number (as protobufjs does); false when it cannot. */
function skip(wireType: number, end: number): boolean {
  switch (wireType) {
    case 0:
      do if (p >= end) return false;
      while (b[p++]! & 0x80);
      return true;
    case 1:
      p += 8;
      return p <= end;
    case 2: {
      const n = length(end);
      if (n < 0) return false;
      p += n;
      return true;
    }
    case 5:
      p += 4;
      return p <= end;
    default:
      return false; // groups: protobufjs
  }
}

/** A HeaderValue's name and value joined into `out`; false when the shape is not covered. */
function headerInto(end: number, out: Record<string, string>): boolean {
  let keyStart = 0;
  let keyEnd = 0;
  let valueStart = -1;
  let valueEnd = -1;
  let rawStart = -1;
  let rawEnd = -1;
  while (p < end) {
    const tag = varint(end);
    const field = tag >>> 3;
    if (tag < 0) return false;
    if (field >= 1 && field <= 3) {
      if ((tag & 7) !== 2) return false;
      const n = length(end);
      if (n < 0) return false;
      // A field given twice: the last one counts.
      if (field === 1) keyEnd = (keyStart = p) + n;
      else if (field === 2) valueEnd = (valueStart = p) + n;
      else rawEnd = (rawStart = p) + n;
      p += n;
    } else if (!skip(tag & 7, end)) return false;
  }
  const key = headerName(b, keyStart, keyEnd);
  const value =
    rawEnd > rawStart
      ? headerValue(b, rawStart, rawEnd)
      : valueStart >= 0
        ? (b as Slicing).utf8Slice(valueStart, valueEnd)
        : '';
  const prev = out[key];
  out[key] = prev === undefined || key === 'set-cookie' ? value : `${prev}, ${value}`;
  return true;
}

function httpHeaders(end: number, decodeMap: (bytes: Buffer) => HeaderMap): HttpHeaders | undefined {
  let mapStart = -1;
  let mapEnd = -1;
  let endOfStream = false;
  while (p < end) {
    const tag = varint(end);
    if (tag === 0x0a) {
      if (mapStart >= 0) return undefined; // protobufjs keeps the last HeaderMap
      const n = length(end);
      if (n < 0) return undefined;
      mapEnd = (mapStart = p) + n;
      p = mapEnd;
    } else if (tag === 0x18) {
      const v = varint(end);
      if (v < 0) return undefined;
      endOfStream = v !== 0;
    } else {
      const field = tag >>> 3;
      if (tag < 0 || (field >= 1 && field <= 3) || !skip(tag & 7, end)) return undefined;
    }
  }
  const record = Object.create(null) as Record<string, string>;
  if (mapStart < 0) return new DecodedHeaders(endOfStream, record, b, -1, -1, decodeMap);
  p = mapStart;
  while (p < mapEnd) {
    const tag = varint(mapEnd);
    if (tag === 0x0a) {
      const n = length(mapEnd);
      if (n < 0 || !headerInto(p + n, record)) return undefined;
    } else if (tag < 0 || tag >>> 3 === 1 || !skip(tag & 7, mapEnd)) return undefined;
  }
  return new DecodedHeaders(endOfStream, record, b, mapStart, mapEnd, decodeMap);
}

function httpBody(end: number): HttpBody | undefined {
  let bodyStart = p;
  let bodyEnd = p;
  let endOfStream = false;
  while (p < end) {
    const tag = varint(end);
    if (tag === 0x0a) {
      const n = length(end);
      if (n < 0) return undefined;
      bodyEnd = (bodyStart = p) + n;
      p = bodyEnd;
    } else if (tag === 0x10) {
      const v = varint(end);
      if (v < 0) return undefined;
      endOfStream = v !== 0;
    } else {
      const field = tag >>> 3;
      if (tag < 0 || field === 1 || field === 2 || !skip(tag & 7, end)) return undefined;
    }
  }
  return { body: b.subarray(bodyStart, bodyEnd), end_of_stream: endOfStream };
}

/** The request, or undefined when its shape is not covered (then protobufjs decodes it whole). */
export function decodeRequest(buf: Buffer, protobufjs: ProtobufjsDecoders): ProcessingRequest | undefined {
  b = buf;
  p = 0;
  const end = buf.length;
  let field = 0;
  let start = 0;
  let memberEnd = 0;
  /** [start, end) of each other field, in order. */
  let others: number[] | undefined;
  while (p < end) {
    const at = p;
    const tag = varint(end);
    if (tag < 0) return done(undefined);
    const f = tag >>> 3;
    if (f >= 2 && f <= 5) {
      if ((tag & 7) !== 2 || field !== 0) return done(undefined);
      const n = length(end);
      if (n < 0) return done(undefined);
      field = f;
      start = p;
      memberEnd = p += n;
    } else if (f === 6 || f === 7 || !skip(tag & 7, end)) return done(undefined);
    else (others ??= []).push(at, p);
  }
  if (field === 0) return done(undefined);
  p = start;
  const member = field <= 3 ? httpHeaders(memberEnd, protobufjs.headerMap) : httpBody(memberEnd);
  if (!member) return done(undefined);
  if (!others) return done(plain(field, member));
  // protobufjs's message for the other fields: its `request` getter names the member set on it.
  const parts: Buffer[] = [];
  for (let i = 0; i < others.length; i += 2) parts.push(buf.subarray(others[i], others[i + 1]));
  let req: ProcessingRequest;
  try {
    req = protobufjs.request(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  } catch {
    return done(undefined); // protobufjs on the whole message says where it is broken
  }
  if (field === 2) req.request_headers = member as HttpHeaders;
  else if (field === 3) req.response_headers = member as HttpHeaders;
  else if (field === 4) req.request_body = member as HttpBody;
  else req.response_body = member as HttpBody;
  return done(req);
}

function plain(field: number, member: HttpHeaders | HttpBody): ProcessingRequest {
  switch (field) {
    case 2:
      return { request: 'request_headers', request_headers: member as HttpHeaders };
    case 3:
      return { request: 'response_headers', response_headers: member as HttpHeaders };
    case 4:
      return { request: 'request_body', request_body: member as HttpBody };
    default:
      return { request: 'response_body', response_body: member as HttpBody };
  }
}

/** Lets go of the message buffer. */
function done<T>(result: T): T {
  b = EMPTY;
  return result;
}
