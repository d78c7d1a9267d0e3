// The ext_proc answers of every request, encoded by hand. protobufjs builds a linked list of
// write operations (an object per field, a fork per nested message), about 17 KB of garbage per
// request for the header mutations alone; this writes the same bytes in two passes over a size
// tape (wire.ts: the first checks the shape and measures, the second writes one buffer), with no
// allocation but that buffer. It covers the shape TierFlow sends for each phase:
//   ProcessingResponse { request_headers = 1 | response_headers = 2 | request_body = 3 |
//                        response_body = 4: { response = 1: CommonResponse },
//                        dynamic_metadata = 8: Struct, mode_override = 9: ProcessingMode }
//   CommonResponse { status = 1 (enum), header_mutation = 2, body_mutation = 3 { body = 1 },
//                    clear_route_cache = 5 }
//   HeaderMutation { set_headers = 1: HeaderValueOption { header = 1: HeaderValue { key = 1,
//                    value = 2, raw_value = 3 }, append = 2: BoolValue { value = 1 } },
//                    remove_headers = 2 }
//   ProcessingMode { six enums, fields 1-6 }
// A body given as a SplicedBody (the client's bytes with the model replaced) is written piece by
// piece into the answer: the rewritten body is never a buffer of its own.
// Anything else (immediate responses, trailers, timeouts, fields it does not know) returns
// undefined and goes to protobufjs. Enums must already be numbers (the codec normalizes them).
import { SplicedBody } from '../core/raw-json.js';
import { measureStruct, writeStruct } from './struct-encoder.js';
import type { PbStruct, ProcessingResponse } from './types.js';
import { ldSize, SizeTape, varintSize, writeRaw, writeUtf8, writeVarint } from './wire.js';

const MEMBER_FIELD: Record<string, number> = {
  request_headers: 1,
  response_headers: 2,
  request_body: 3,
  response_body: 4,
};
const MODE_FIELDS = [
  'request_header_mode',
  'response_header_mode',
  'request_body_mode',
  'response_body_mode',
  'request_trailer_mode',
  'response_trailer_mode',
] as const;

type Obj = Record<string, unknown>;

const present = (v: unknown) => v !== undefined && v !== null;
const isEnum = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;

const tape = new SizeTape();

/** What the measuring pass found: the parts to write (sizes are on the tape). */
let field = 0;
let member: Obj | undefined;
let common: Obj | undefined;
let modes: Obj | undefined;
let metadata: PbStruct | undefined;

function forget(): undefined {
  member = common = modes = metadata = undefined;
  return undefined;
}

/** The mode_override's content size; -1 when it is not covered. */
function measureModes(mo: Obj): number {
  let size = 0;
  let known = 0;
  for (const f of MODE_FIELDS) {
    const v = mo[f];
    if (!present(v)) continue;
    if (!isEnum(v)) return -1;
    size += 1 + varintSize(v as number);
    known++;
  }
  for (const k in mo) if (present(mo[k])) known--;
  return known === 0 ? size : -1; // a field it does not know: protobufjs
}

/**
 * HeaderMutation: per set_headers entry, the option's size, the HeaderValue's size, the key's
 * byte length and (with `value`) the value's; per remove_headers name, its byte length. -1 when
 * the shape is not covered.
 */
function measureMutation(hm: Obj): number {
  let size = 0;
  for (const k in hm) {
    const v = hm[k];
    if (present(v) && (!Array.isArray(v) || (k !== 'set_headers' && k !== 'remove_headers'))) return -1;
  }
  const set = hm.set_headers as Obj[] | undefined | null;
  if (set) {
    for (const o of set) {
      let header: Obj | undefined;
      let appendSize = 0;
      for (const ok in o) {
        const ov = o[ok];
        if (!present(ov)) continue;
        if (ok === 'header') header = ov as Obj;
        else if (ok === 'append') {
          const a = (ov as Obj).value;
          if (present(a) && typeof a !== 'boolean') return -1;
          appendSize = present(a) ? 4 : 2; // BoolValue with its value, or empty
        } else return -1;
      }
      if (!header) return -1;
      const optionSlot = tape.push(0);
      const headerSlot = tape.push(0);
      let headerSize = 0;
      let keySize = 0;
      let valueSize = -1;
      for (const hk in header) {
        const hv = header[hk];
        if (!present(hv)) continue;
        if (hk === 'key' && typeof hv === 'string') keySize = Buffer.byteLength(hv);
        else if (hk === 'value' && typeof hv === 'string') valueSize = Buffer.byteLength(hv);
        else if (hk === 'raw_value' && hv instanceof Uint8Array) headerSize += ldSize(hv.length);
        else return -1;
      }
      tape.push(keySize);
      if (keySize > 0) headerSize += ldSize(keySize);
      if (valueSize >= 0) {
        tape.push(valueSize);
        headerSize += ldSize(valueSize);
      }
      const optionSize = ldSize(headerSize) + appendSize;
      tape.set(optionSlot, optionSize);
      tape.set(headerSlot, headerSize);
      size += ldSize(optionSize);
    }
  }
  const remove = hm.remove_headers as unknown[] | undefined | null;
  if (remove) {
    for (const name of remove) {
      if (typeof name !== 'string') return -1;
      const n = Buffer.byteLength(name);
      tape.push(n);
      size += ldSize(n);
    }
  }
  return size;
}

/** CommonResponse's content size; -1 when the shape is not covered. */
function measureCommon(c: Obj): number {
  let size = 0;
  for (const k in c) {
    const v = c[k];
    if (!present(v)) continue;
    if (k === 'status') {
      if (!isEnum(v)) return -1;
      size += 1 + varintSize(v as number);
    } else if (k === 'header_mutation') {
      const mutationSlot = tape.push(0);
      const n = measureMutation(v as Obj);
      if (n < 0) return -1;
      tape.set(mutationSlot, n);
      size += ldSize(n);
    } else if (k === 'body_mutation') {
      const bm = v as Obj;
      let body: unknown;
      for (const b in bm) {
        if (!present(bm[b])) continue;
        if (b !== 'body' || !(bm[b] instanceof Uint8Array || bm[b] instanceof SplicedBody)) return -1;
        body = bm[b];
      }
      if (!body) return -1; // an empty BodyMutation: left to protobufjs
      size += ldSize(ldSize((body as Uint8Array | SplicedBody).length));
    } else if (k === 'clear_route_cache') {
      if (typeof v !== 'boolean') return -1;
      if (v) size += 2;
    } else return -1;
  }
  return size;
}

/**
 * The measuring pass: checks the shape and puts the sizes on the tape in writing order (member,
 * CommonResponse, mutation..., metadata..., mode override). Returns the answer's size, or -1.
 */
function measure(res: ProcessingResponse): number {
  field = 0;
  forget();
  tape.reset();
  const r = res as unknown as Obj;
  for (const k in r) {
    const v = r[k];
    if (!present(v)) continue;
    const f = MEMBER_FIELD[k];
    if (f !== undefined) {
      if (field !== 0) return -1;
      field = f;
      member = v as Obj;
    } else if (k === 'mode_override') modes = v as Obj;
    else if (k === 'dynamic_metadata') metadata = v as PbStruct;
    else return -1;
  }
  if (field === 0 || !member) return -1;
  for (const k in member) {
    if (!present(member[k])) continue;
    if (k !== 'response') return -1;
    common = member[k] as Obj;
  }
  const memberSlot = tape.push(0);
  let memberSize = 0;
  if (common) {
    const commonSlot = tape.push(0);
    const n = measureCommon(common);
    if (n < 0) return -1;
    tape.set(commonSlot, n);
    memberSize = ldSize(n);
  }
  tape.set(memberSlot, memberSize);
  let total = ldSize(memberSize);
  if (metadata) {
    const slot = tape.push(0);
    const n = measureStruct(metadata, tape);
    tape.set(slot, n);
    total += ldSize(n);
  }
  if (modes) {
    const n = measureModes(modes);
    if (n < 0) return -1;
    tape.push(n);
    total += ldSize(n);
  }
  return total;
}

function writeString(buf: Buffer, pos: number, tag: number, s: string, size: number): number {
  buf[pos++] = tag;
  return writeUtf8(buf, writeVarint(buf, pos, size), s, size);
}

function writeBytes(buf: Buffer, pos: number, tag: number, b: Uint8Array): number {
  buf[pos++] = tag;
  return writeRaw(buf, writeVarint(buf, pos, b.length), b);
}

function writeMutation(buf: Buffer, pos: number, hm: Obj): number {
  const set = hm.set_headers as Obj[] | undefined | null;
  if (set) {
    for (const o of set) {
      const header = o.header as { key?: string; value?: string; raw_value?: Uint8Array };
      buf[pos++] = 0x0a; // set_headers = 1
      pos = writeVarint(buf, pos, tape.next());
      buf[pos++] = 0x0a; // header = 1
      pos = writeVarint(buf, pos, tape.next());
      const keySize = tape.next();
      if (keySize > 0) pos = writeString(buf, pos, 0x0a, header.key!, keySize);
      if (present(header.value)) pos = writeString(buf, pos, 0x12, header.value!, tape.next());
      if (present(header.raw_value)) pos = writeBytes(buf, pos, 0x1a, header.raw_value!);
      const append = o.append as { value?: boolean | null } | undefined | null;
      if (present(append)) {
        buf[pos++] = 0x12; // append = 2 (BoolValue)
        if (!present(append!.value)) buf[pos++] = 0;
        else {
          buf[pos++] = 2;
          buf[pos++] = 0x08;
          buf[pos++] = append!.value ? 1 : 0;
        }
      }
    }
  }
  const remove = hm.remove_headers as string[] | undefined | null;
  if (remove) for (const name of remove) pos = writeString(buf, pos, 0x12, name, tape.next()); // remove_headers = 2
  return pos;
}

function writeCommon(buf: Buffer, pos: number, c: Obj): number {
  if (present(c.status)) {
    buf[pos++] = 0x08;
    pos = writeVarint(buf, pos, c.status as number);
  }
  if (present(c.header_mutation)) {
    buf[pos++] = 0x12; // header_mutation = 2
    pos = writeVarint(buf, pos, tape.next());
    pos = writeMutation(buf, pos, c.header_mutation as Obj);
  }
  const bm = c.body_mutation as { body: Uint8Array | SplicedBody } | undefined | null;
  if (present(bm)) {
    const body = bm!.body;
    buf[pos++] = 0x1a; // body_mutation = 3
    pos = writeVarint(buf, pos, ldSize(body.length));
    if (body instanceof SplicedBody) {
      buf[pos++] = 0x0a; // body = 1
      pos = writeVarint(buf, pos, body.length);
      pos = body.writeInto(buf, pos);
    } else pos = writeBytes(buf, pos, 0x0a, body); // body = 1
  }
  if (c.clear_route_cache === true) {
    buf[pos++] = 0x28; // clear_route_cache = 5
    buf[pos++] = 1;
  }
  return pos;
}

/** Answers up to this size are written into the reused buffer (encodeAnswer's `reuse`). */
const MAX_REUSED = 1 << 20;
let reused = Buffer.allocUnsafeSlow(0);

/** A buffer of at least `size` bytes, the same one from call to call (grown by doubling). */
function reusedBuffer(size: number): Buffer {
  if (reused.length < size) reused = Buffer.allocUnsafeSlow(Math.max(4096, 2 ** Math.ceil(Math.log2(size))));
  return reused;
}

/**
 * The answer's bytes, or undefined when its shape is not one this encoder covers. With `reuse`
 * the bytes are a view of a buffer the next call writes over: only for a caller that copies them
 * before it calls again (grpc-js's serializer, see codec.ts). That spares an answer carrying a
 * body (over 4 KB, so not from Buffer's pool) an ArrayBuffer of its own.
 */
export function encodeAnswer(res: ProcessingResponse, reuse = false): Buffer | undefined {
  const total = measure(res);
  if (total < 0) return forget();
  const buf = reuse && total <= MAX_REUSED ? reusedBuffer(total) : Buffer.allocUnsafe(total);
  let pos = 0;
  buf[pos++] = (field << 3) | 2;
  pos = writeVarint(buf, pos, tape.next());
  if (common) {
    buf[pos++] = 0x0a; // HeadersResponse/BodyResponse.response = 1
    pos = writeVarint(buf, pos, tape.next());
    pos = writeCommon(buf, pos, common);
  }
  if (metadata) {
    buf[pos++] = 0x42; // dynamic_metadata = 8
    pos = writeVarint(buf, pos, tape.next());
    pos = writeStruct(buf, pos, metadata, tape);
  }
  if (modes) {
    buf[pos++] = 0x4a; // mode_override = 9
    pos = writeVarint(buf, pos, tape.next());
    for (let i = 0; i < MODE_FIELDS.length; i++) {
      const v = modes[MODE_FIELDS[i]!];
      if (!present(v)) continue;
      buf[pos++] = (i + 1) << 3;
      pos = writeVarint(buf, pos, v as number);
    }
  }
  forget();
  if (pos !== total) throw new Error(`ext_proc answer encoder: wrote ${pos} of ${total} bytes`);
  return buf.length === total ? buf : buf.subarray(0, total);
}
