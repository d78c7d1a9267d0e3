import { describe, expect, it } from 'vitest';
import {
  parseSse,
  SSE_DONE,
  SseParser,
  sseData,
  sseEvent,
  type SseEvent,
} from '../../src/core/providers/shared/sse.js';

function collect(chunks: Uint8Array[], withEnd = true): { events: SseEvent[]; comments: string[] } {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const p = new SseParser(
    (data, event, id) => events.push(id === undefined ? { data, event } : { data, event, id }),
    (c) => comments.push(c),
  );
  for (const c of chunks) p.push(c);
  if (withEnd) p.end();
  return { events, comments };
}

const bytes = (s: string) => Buffer.from(s, 'utf8');

// Multi-byte characters of every UTF-8 length, every line-ending style, comments, names, ids.
const FIXTURE =
  '\uFEFF: opening comment\r\n' +
  'event: message_start\r\n' +
  'data: {"text":"héllo wörld"}\r\n' +
  '\r\n' +
  'data:no-space 日本語\n' +
  'data:  two spaces kept one\n' +
  '\n' +
  'id: 42\r' +
  'data: emoji 😀🎉 end\r' +
  '\r' +
  'event: ping\n' +
  'data\n' +
  '\n' +
  ':comment only\n' +
  '\n' +
  'retry: 1000\n' +
  'unknown: field\n' +
  'data: multi\n' +
  'data: line\n' +
  'data: € sign\n' +
  '\n' +
  'data: [DONE]\n\n';

const EXPECTED: SseEvent[] = [
  { data: '{"text":"héllo wörld"}', event: 'message_start' },
  { data: 'no-space 日本語\n two spaces kept one', event: 'message' },
  { data: 'emoji 😀🎉 end', event: 'message', id: '42' },
  { data: '', event: 'ping', id: '42' },
  { data: 'multi\nline\n€ sign', event: 'message', id: '42' },
  { data: '[DONE]', event: 'message', id: '42' },
];

describe('SseParser', () => {
  it('parses fields, names, ids, comments, multi-line data and every line ending', () => {
    const { events, comments } = collect([bytes(FIXTURE)]);
    expect(events).toEqual(EXPECTED);
    expect(comments).toEqual([' opening comment', 'comment only']);
  });

  it('gives the same events for a split at every byte position', () => {
    const all = bytes(FIXTURE);
    for (let i = 0; i <= all.length; i++) {
      const { events } = collect([all.subarray(0, i), all.subarray(i)]);
      expect(events, `split at byte ${i}`).toEqual(EXPECTED);
    }
  });

  it('gives the same events for every pair of split positions (three chunks)', () => {
    const all = bytes(FIXTURE);
    for (let i = 0; i <= all.length; i += 3) {
      for (let j = i; j <= all.length; j += 2) {
        const { events } = collect([all.subarray(0, i), all.subarray(i, j), all.subarray(j)]);
        expect(events).toEqual(EXPECTED);
      }
    }
  });

  it('gives the same events fed one byte at a time', () => {
    const all = bytes(FIXTURE);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < all.length; i++) chunks.push(all.subarray(i, i + 1));
    expect(collect(chunks).events).toEqual(EXPECTED);
  });

  it('does not mangle a multi-byte character split across chunks', () => {
    const all = bytes('data: 😀\n\n');
    // The emoji is bytes 6..9; cut inside it at each position.
    for (let i = 7; i <= 9; i++) {
      expect(collect([all.subarray(0, i), all.subarray(i)]).events).toEqual([
        { data: '😀', event: 'message' },
      ]);
    }
  });

  it('treats \\r then \\n in the next chunk as one line ending', () => {
    const { events } = collect([bytes('data: a\r'), bytes('\ndata: b\r'), bytes('\n\r'), bytes('\n')]);
    expect(events).toEqual([{ data: 'a\nb', event: 'message' }]);
  });

  it('dispatches nothing for an event without data, and resets the event name', () => {
    const { events } = collect([bytes('event: x\n\ndata: y\n\n')]);
    expect(events).toEqual([{ data: 'y', event: 'message' }]);
  });

  it('dispatches an unterminated last event on end() (lenient), not before', () => {
    const p = collect([bytes('data: a\n\ndata: tail')], false);
    expect(p.events).toEqual([{ data: 'a', event: 'message' }]);
    expect(collect([bytes('data: a\n\ndata: tail')]).events).toEqual([
      { data: 'a', event: 'message' },
      { data: 'tail', event: 'message' },
    ]);
  });

  it('handles a very long line cut into many chunks', () => {
    const long = 'x'.repeat(100_000) + 'é';
    const all = bytes(`data: ${long}\n\n`);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < all.length; i += 7) chunks.push(all.subarray(i, i + 7));
    expect(collect(chunks).events).toEqual([{ data: long, event: 'message' }]);
  });

  it('copies carried-over bytes, so a caller may reuse its buffer', () => {
    const events: string[] = [];
    const p = new SseParser((d) => events.push(d));
    const buf = Buffer.from('data: abc');
    p.push(buf);
    buf.fill(0x7a); // caller reuses the buffer
    p.push(Buffer.from('\n\n'));
    expect(events).toEqual(['abc']);
  });

  it('accepts Uint8Array input and empty chunks', () => {
    const { events } = collect([
      new Uint8Array(0),
      new TextEncoder().encode('data: u8\n\n'),
      new Uint8Array(0),
    ]);
    expect(events).toEqual([{ data: 'u8', event: 'message' }]);
  });

  it('treats a line without a colon as a field name with an empty value', () => {
    expect(parseSse('data\ndata\n\n')).toEqual([{ data: '\n', event: 'message' }]);
  });

  it('ignores a BOM only at the very start', () => {
    expect(parseSse('\uFEFFdata: a\n\n')).toEqual([{ data: 'a', event: 'message' }]);
    // A BOM later is part of the field name: the line is an unknown field.
    expect(parseSse('data: a\n\n\uFEFFdata: b\n\n')).toEqual([{ data: 'a', event: 'message' }]);
  });
});

describe('SSE writer', () => {
  it('writes single-line data events', () => {
    expect(sseData('{"a":1}')).toBe('data: {"a":1}\n\n');
    expect(SSE_DONE.toString()).toBe('data: [DONE]\n\n');
  });

  it('writes named and multi-line events that parse back to the same data', () => {
    const text = sseEvent('line1\nline2\r\nline3', 'delta') + sseEvent('plain');
    expect(text).toBe('event: delta\ndata: line1\ndata: line2\ndata: line3\n\ndata: plain\n\n');
    expect(parseSse(text)).toEqual([
      { data: 'line1\nline2\nline3', event: 'delta' },
      { data: 'plain', event: 'message' },
    ]);
  });
});
