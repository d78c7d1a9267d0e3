import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { describe, expect, it } from 'vitest';
import {
  EventStreamDecoder,
  EventStreamError,
  encodeEventStreamMessage,
  type EventStreamMessage,
} from '../../src/core/providers/shared/eventstream.js';

const event = (type: string, payload: unknown) =>
  encodeEventStreamMessage(
    { ':message-type': 'event', ':event-type': type, ':content-type': 'application/json' },
    JSON.stringify(payload),
  );

const simplify = (ms: EventStreamMessage[]) =>
  ms.map((m) => ({ type: m.headers[':event-type'], body: Buffer.from(m.body).toString('utf8') }));

const frames = [
  event('messageStart', { role: 'assistant' }),
  event('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'héllo wörld ✓' } }),
  event('contentBlockStop', { contentBlockIndex: 0 }),
  event('messageStop', { stopReason: 'end_turn' }),
];
const whole = Buffer.concat(frames.map((f) => Buffer.from(f)));

describe('EventStreamDecoder', () => {
  it('decodes whole messages fed at once', () => {
    const d = new EventStreamDecoder();
    const out = simplify(d.push(whole));
    expect(out.map((m) => m.type)).toEqual([
      'messageStart',
      'contentBlockDelta',
      'contentBlockStop',
      'messageStop',
    ]);
    expect(JSON.parse(out[1]!.body).delta.text).toBe('héllo wörld ✓');
    expect(d.pendingBytes).toBe(0);
  });

  it('gives the same messages for a split at every byte offset', () => {
    const expected = simplify(new EventStreamDecoder().push(whole));
    for (let cut = 1; cut < whole.length; cut++) {
      const d = new EventStreamDecoder();
      const got = [...d.push(whole.subarray(0, cut)), ...d.push(whole.subarray(cut))];
      expect(simplify(got)).toEqual(expected);
    }
  });

  it('handles one byte at a time and splits inside the prelude, the headers and the payload', () => {
    const first = Buffer.from(frames[1]!);
    const headersLen = first.readUInt32BE(4);
    // mid-prelude (5), mid-headers (12 + half the headers), mid-payload (a few bytes before the end)
    for (const cut of [5, 12 + Math.floor(headersLen / 2), first.length - 7]) {
      const d = new EventStreamDecoder();
      expect(d.push(first.subarray(0, cut))).toEqual([]);
      expect(d.pendingBytes).toBe(cut);
      expect(simplify(d.push(first.subarray(cut)))[0]!.type).toBe('contentBlockDelta');
    }
    const d = new EventStreamDecoder();
    const got: EventStreamMessage[] = [];
    for (const byte of whole) got.push(...d.push(Buffer.from([byte])));
    expect(got).toHaveLength(4);
  });

  it('matches the AWS SDK codec for typed headers', () => {
    const codec = new EventStreamCodec(toUtf8, fromUtf8);
    const bytes = codec.encode({
      headers: {
        ':message-type': { type: 'string', value: 'event' },
        flag: { type: 'boolean', value: true },
        n: { type: 'integer', value: 42 },
      },
      body: fromUtf8('{}'),
    });
    const [m] = new EventStreamDecoder().push(bytes);
    expect(m!.headers).toEqual({ ':message-type': 'event', flag: true, n: 42 });
  });

  it('rejects a corrupt message checksum', () => {
    const bad = Buffer.from(frames[1]!);
    bad[bad.length - 20]! ^= 0xff; // flip a payload byte
    const d = new EventStreamDecoder();
    expect(() => d.push(bad)).toThrow(EventStreamError);
    // stays failed
    expect(() => d.push(Buffer.from(frames[0]!))).toThrow(EventStreamError);
  });

  it('rejects a corrupt prelude before waiting for the advertised length', () => {
    const bad = Buffer.from(frames[1]!);
    bad.writeUInt32BE(0x7fffffff, 0); // absurd length, prelude CRC no longer matches
    const d = new EventStreamDecoder();
    expect(() => d.push(bad.subarray(0, 12))).toThrow(/prelude checksum/);
  });

  it('rejects a message longer than the limit even with a valid prelude', () => {
    const big = encodeEventStreamMessage({ ':message-type': 'event' }, 'x'.repeat(2000));
    const d = new EventStreamDecoder(1024);
    expect(() => d.push(big.subarray(0, 12))).toThrow(/out of range/);
  });
});
