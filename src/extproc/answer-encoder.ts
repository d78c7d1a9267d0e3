// The ext_proc answers of every request, encoded by hand. protobufjs builds a linked list of
// write operations (an object per field, a fork per nested message), about 17 KB of garbage per
// request for the header mutations alone; this writes the same bytes in two passes (sizes, then
// one buffer). It covers the shape TierFlow sends for each phase:
//   ProcessingResponse { request_headers = 1 | response_headers = 2 | request_body = 3 |
//                        response_body = 4: { response = 1: CommonResponse },
//                        dynamic_metadata = 8: Struct, mode_override = 9: ProcessingMode }
//   CommonResponse { status = 1 (enum), header_mutation = 2, body_mutation = 3 { body = 1 },
//                    clear_route_cache = 5 }
//   HeaderMutation { set_headers = 1: HeaderValueOption { header = 1: HeaderValue { key = 1,
//                    value = 2, raw_value = 3 }, append = 2: BoolValue { value = 1 } },
//                    remove_headers = 2 }
//   ProcessingMode { six enums, fields 1-6 }
// Anything else (immediate responses, trailers, timeouts, fields it does not know) returns
// undefined and goes to protobufjs. Enums must already be numbers (the codec normalizes them).
import type { PbStruct, ProcessingResponse } from './types.js';

const MEMBER_FIELD: Record<string, number> = {
  request_headers: 1,
  response_headers: 2,
  request_body: 3,
  response_body: 4,
};
const MODE_FIELD: Record<string, number> = {
  request_header_mode: 1,
  response_header_mode: 2,
  request_body_mode: 3,
  response_body_mode: 4,
  request_trailer_mode: 5,
  response_trailer_mode: 6,
};

const varintSize = (n: number) => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);
/** A length-delimited field of `n` bytes with a one-byte tag (every field number here is < 16). */
const ld = (n: number) => 1 + varintSize(n) + n;

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

type Obj = Record<string, unknown>;
interface Header {
  key: string;
  value?: string;
  raw?: Uint8Array;
  /** undefined: no append field; null: an empty BoolValue; else its value (written even when false). */
  append?: boolean | null;
  size: number;
  optionSize: number;
}
interface Plan {
  field: number;
  status?: number;
  headers: Header[];
  remove: string[];
  mutationSize: number;
  hasMutation: boolean;
  body?: Uint8Array;
  clearRouteCache: boolean;
  commonSize: number;
  hasCommon: boolean;
  modes: Array<[number, number]>;
  hasMode: boolean;
  metadata?: Buffer;
}

const present = (v: unknown) => v !== undefined && v !== null;

/** The plan of an answer (what to write and the sizes), or undefined when it is not covered. */
function plan(res: ProcessingResponse, structBytes: (s: PbStruct) => Buffer): Plan | undefined {
  let field = 0;
  let member: Obj | undefined;
  let modes: Array<[number, number]> = [];
  let hasMode = false;
  let metadata: Buffer | undefined;
  const r = res as unknown as Obj;
  for (const k in r) {
    const v = r[k];
    if (!present(v)) continue;
    const f = MEMBER_FIELD[k];
    if (f !== undefined) {
      if (field !== 0) return undefined;
      field = f;
      member = v as Obj;
    } else if (k === 'mode_override') {
      hasMode = true;
      modes = [];
      const mo = v as Obj;
      for (const m in mo) {
        const x = mo[m];
        if (!present(x)) continue;
        const mf = MODE_FIELD[m];
        if (mf === undefined || typeof x !== 'number' || !Number.isInteger(x) || x < 0) return undefined;
        modes.push([mf, x]);
      }
    } else if (k === 'dynamic_metadata') {
      metadata = structBytes(v as PbStruct);
    } else return undefined;
  }
  if (field === 0 || !member) return undefined;
  let common: Obj | undefined;
  for (const k in member) {
    if (!present(member[k])) continue;
    if (k !== 'response') return undefined;
    common = member[k] as Obj;
  }
  const p: Plan = {
    field,
    headers: [],
    remove: [],
    mutationSize: 0,
    hasMutation: false,
    clearRouteCache: false,
    commonSize: 0,
    hasCommon: common !== undefined,
    modes,
    hasMode,
    metadata,
  };
  if (common) {
    for (const k in common) {
      const v = common[k];
      if (!present(v)) continue;
      if (k === 'status') {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) return undefined;
        p.status = v;
      } else if (k === 'header_mutation') {
        if (!planMutation(v as Obj, p)) return undefined;
      } else if (k === 'body_mutation') {
        const bm = v as Obj;
        for (const b in bm) {
          if (!present(bm[b])) continue;
          if (b !== 'body' || !(bm[b] instanceof Uint8Array)) return undefined;
          p.body = bm[b];
        }
        if (!p.body) return undefined; // an empty BodyMutation: left to protobufjs
      } else if (k === 'clear_route_cache') {
        if (typeof v !== 'boolean') return undefined;
        p.clearRouteCache = v;
      } else return undefined;
    }
    let size = 0;
    if (p.status !== undefined) size += 1 + varintSize(p.status);
    if (p.hasMutation) size += ld(p.mutationSize);
    if (p.body) size += ld(ld(p.body.length));
    if (p.clearRouteCache) size += 2;
    p.commonSize = size;
  }
  return p;
}

function planMutation(hm: Obj, p: Plan): boolean {
  p.hasMutation = true;
  let size = 0;
  for (const k in hm) {
    const v = hm[k];
    if (!present(v)) continue;
    if (!Array.isArray(v)) return false;
    if (k === 'set_headers') {
      for (const o of v as Obj[]) {
        let header: Obj | undefined;
        let append: boolean | null | undefined;
        for (const ok in o) {
          const ov = o[ok];
          if (!present(ov)) continue;
          if (ok === 'header') header = ov as Obj;
          else if (ok === 'append') {
            const a = (ov as Obj).value;
            if (present(a) && typeof a !== 'boolean') return false;
            append = present(a) ? (a as boolean) : null;
          } else return false;
        }
        if (!header) return false;
        const h: Header = { key: '', append, size: 0, optionSize: 0 };
        for (const hk in header) {
          const hv = header[hk];
          if (!present(hv)) continue;
          if (hk === 'key' && typeof hv === 'string') h.key = hv;
          else if (hk === 'value' && typeof hv === 'string') h.value = hv;
          else if (hk === 'raw_value' && hv instanceof Uint8Array) h.raw = hv;
          else return false;
        }
        h.size =
          (h.key ? ld(Buffer.byteLength(h.key)) : 0) +
          (h.value !== undefined ? ld(Buffer.byteLength(h.value)) : 0) +
          (h.raw !== undefined ? ld(h.raw.length) : 0);
        h.optionSize = ld(h.size) + (append === undefined ? 0 : append === null ? 2 : 4);
        size += ld(h.optionSize);
        p.headers.push(h);
      }
    } else if (k === 'remove_headers') {
      for (const name of v as unknown[]) {
        if (typeof name !== 'string') return false;
        size += ld(Buffer.byteLength(name));
        p.remove.push(name);
      }
    } else return false;
  }
  p.mutationSize = size;
  return true;
}

function writeString(buf: Buffer, pos: number, tag: number, s: string): number {
  buf[pos++] = tag;
  pos = writeVarint(buf, pos, Buffer.byteLength(s));
  return pos + buf.write(s, pos, 'utf8');
}

function writeBytes(buf: Buffer, pos: number, tag: number, b: Uint8Array): number {
  buf[pos++] = tag;
  pos = writeVarint(buf, pos, b.length);
  buf.set(b, pos);
  return pos + b.length;
}

/** The answer's bytes, or undefined when its shape is not one this encoder covers. */
export function encodeAnswer(
  res: ProcessingResponse,
  structBytes: (s: PbStruct) => Buffer,
): Buffer | undefined {
  const p = plan(res, structBytes);
  if (!p) return undefined;
  const memberSize = p.hasCommon ? ld(p.commonSize) : 0;
  let modeSize = 0;
  for (const [, v] of p.modes) modeSize += 1 + varintSize(v);
  const total = ld(memberSize) + (p.hasMode ? ld(modeSize) : 0) + (p.metadata ? ld(p.metadata.length) : 0);
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  buf[pos++] = (p.field << 3) | 2;
  pos = writeVarint(buf, pos, memberSize);
  if (p.hasCommon) {
    buf[pos++] = 0x0a; // HeadersResponse/BodyResponse.response = 1
    pos = writeVarint(buf, pos, p.commonSize);
    if (p.status !== undefined) {
      buf[pos++] = 0x08;
      pos = writeVarint(buf, pos, p.status);
    }
    if (p.hasMutation) {
      buf[pos++] = 0x12; // header_mutation = 2
      pos = writeVarint(buf, pos, p.mutationSize);
      for (const h of p.headers) {
        buf[pos++] = 0x0a; // set_headers = 1
        pos = writeVarint(buf, pos, h.optionSize);
        buf[pos++] = 0x0a; // header = 1
        pos = writeVarint(buf, pos, h.size);
        if (h.key) pos = writeString(buf, pos, 0x0a, h.key);
        if (h.value !== undefined) pos = writeString(buf, pos, 0x12, h.value);
        if (h.raw !== undefined) pos = writeBytes(buf, pos, 0x1a, h.raw);
        if (h.append !== undefined) {
          buf[pos++] = 0x12; // append = 2 (BoolValue)
          if (h.append === null) buf[pos++] = 0;
          else {
            buf[pos++] = 2;
            buf[pos++] = 0x08;
            buf[pos++] = h.append ? 1 : 0;
          }
        }
      }
      for (const name of p.remove) pos = writeString(buf, pos, 0x12, name); // remove_headers = 2
    }
    if (p.body) {
      buf[pos++] = 0x1a; // body_mutation = 3
      pos = writeVarint(buf, pos, ld(p.body.length));
      pos = writeBytes(buf, pos, 0x0a, p.body); // body = 1
    }
    if (p.clearRouteCache) {
      buf[pos++] = 0x28; // clear_route_cache = 5
      buf[pos++] = 1;
    }
  }
  if (p.metadata) pos = writeBytes(buf, pos, 0x42, p.metadata); // dynamic_metadata = 8
  if (p.hasMode) {
    buf[pos++] = 0x4a; // mode_override = 9
    pos = writeVarint(buf, pos, modeSize);
    for (const [f, v] of p.modes) {
      buf[pos++] = f << 3;
      pos = writeVarint(buf, pos, v);
    }
  }
  if (pos !== total) throw new Error(`ext_proc answer encoder: wrote ${pos} of ${total} bytes`);
  return buf;
}
