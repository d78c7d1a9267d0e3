// google.protobuf.Struct written by hand: protobufjs encodes map fields through a writer fork per
// entry, which made the dynamic metadata cost more than the rest of an answer. Two passes over a
// size tape (wire.ts). Wire format:
//   Struct { map<string, Value> fields = 1 }   (each entry: key = 1, value = 2)
//   Value  { null_value = 1 (varint); number_value = 2 (double); string_value = 3;
//            bool_value = 4 (varint); struct_value = 5 }
import type { PbStruct } from './types.js';
import { ldSize, SizeTape, writeUtf8, writeVarint } from './wire.js';

/**
 * Measures `s` onto the tape in writing order: per entry its size, its key's byte length, its
 * Value's size, then (string) the string's byte length or (struct) the nested struct's content
 * size followed by its own entries. Returns the size of the struct's content.
 */
export function measureStruct(s: PbStruct, tape: SizeTape): number {
  let total = 0;
  for (const key in s.fields) {
    const v = s.fields[key]!;
    const entry = tape.push(0);
    const keySize = Buffer.byteLength(key);
    tape.push(keySize);
    const value = tape.push(0);
    let valueSize: number;
    if ('stringValue' in v) {
      const n = Buffer.byteLength(v.stringValue);
      tape.push(n);
      valueSize = ldSize(n);
    } else if ('numberValue' in v) valueSize = 9;
    else if ('structValue' in v) {
      const inner = tape.push(0);
      const n = measureStruct(v.structValue, tape);
      tape.set(inner, n);
      valueSize = ldSize(n);
    } else valueSize = 2; // bool or null
    const entrySize = ldSize(keySize) + ldSize(valueSize);
    tape.set(entry, entrySize);
    tape.set(value, valueSize);
    total += ldSize(entrySize);
  }
  return total;
}

/** Writes `s` (measured by measureStruct on the same tape) at `pos`; returns the position after it. */
export function writeStruct(buf: Buffer, pos: number, s: PbStruct, tape: SizeTape): number {
  for (const key in s.fields) {
    const v = s.fields[key]!;
    buf[pos++] = 0x0a; // fields = 1 (a map entry)
    pos = writeVarint(buf, pos, tape.next());
    buf[pos++] = 0x0a; // key = 1
    const keySize = tape.next();
    pos = writeUtf8(buf, writeVarint(buf, pos, keySize), key, keySize);
    buf[pos++] = 0x12; // value = 2
    pos = writeVarint(buf, pos, tape.next());
    if ('stringValue' in v) {
      buf[pos++] = 0x1a;
      const size = tape.next();
      pos = writeUtf8(buf, writeVarint(buf, pos, size), v.stringValue, size);
    } else if ('numberValue' in v) {
      buf[pos++] = 0x11;
      pos = buf.writeDoubleLE(v.numberValue, pos);
    } else if ('boolValue' in v) {
      buf[pos++] = 0x20;
      buf[pos++] = v.boolValue ? 1 : 0;
    } else if ('structValue' in v) {
      buf[pos++] = 0x2a;
      pos = writeVarint(buf, pos, tape.next());
      pos = writeStruct(buf, pos, v.structValue, tape);
    } else {
      buf[pos++] = 0x08; // null_value: NULL_VALUE
      buf[pos++] = 0x00;
    }
  }
  return pos;
}

const tape = new SizeTape();

/** The Struct `s` encoded on its own. */
export function structBytes(s: PbStruct): Buffer {
  tape.reset();
  const out = Buffer.allocUnsafe(measureStruct(s, tape));
  writeStruct(out, 0, s, tape);
  return out;
}
