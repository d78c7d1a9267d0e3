// Server-sent events: an incremental parser (bytes in, events out) and small writer helpers.
//
// The parser follows the WHATWG "event stream interpretation" rules: lines end with \r\n, \n or \r;
// `field: value` (one optional space after the colon); `data` lines of one event are joined with
// \n; a blank line dispatches; lines starting with ':' are comments; a UTF-8 BOM at the very start
// is skipped; an event without any `data` line is not dispatched. Input chunks may be cut anywhere
// (inside a line, inside a multi-byte UTF-8 character, between \r and \n): only the bytes of the
// one unfinished line are carried over, and only complete lines are decoded, so a split character
// can never be mangled. Each chunk is scanned once (the carry-over is never re-scanned).
//
// One deliberate leniency: end() dispatches an event that is still pending when the input ends
// without its blank line (the spec drops it). Proxies and some servers cut the final "\n\n".

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;

/** Called for every dispatched event. `event` is "message" unless an `event:` field named it. */
export type SseEventHandler = (data: string, event: string, id: string | undefined) => void;

export interface SseEvent {
  data: string;
  event: string;
  id?: string;
}

export class SseParser {
  /** Bytes of the current unfinished line (copies: the caller may reuse its buffers). */
  #pending: Buffer[] = [];
  #pendingLen = 0;
  /** The previous chunk ended with \r: a \n at the start of the next one belongs to it. */
  #skipLF = false;
  #firstLine = true;
  #data: string | undefined = undefined;
  #moreData: string[] | undefined = undefined;
  #event = '';
  #lastId: string | undefined = undefined;

  private readonly onEvent: SseEventHandler;
  private readonly onComment: ((text: string) => void) | undefined;

  constructor(onEvent: SseEventHandler, onComment?: (text: string) => void) {
    this.onEvent = onEvent;
    this.onComment = onComment;
  }

  /** Feed one chunk of the byte stream. Handlers run synchronously, in order. */
  push(chunk: Uint8Array): void {
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const n = buf.length;
    if (n === 0) return;
    let start = 0;
    if (this.#skipLF) {
      this.#skipLF = false;
      if (buf[0] === LF) start = 1;
    }
    // Positions of the next LF / CR at or after `start`; -1 = none left in this chunk,
    // -2 = not searched yet. Each is searched forward only, so the chunk is scanned once.
    let nextLF = -2;
    let nextCR = -2;
    while (start < n) {
      if (nextLF !== -1 && nextLF < start) nextLF = buf.indexOf(LF, start);
      if (nextCR !== -1 && nextCR < start) nextCR = buf.indexOf(CR, start);
      const eol = nextLF === -1 ? nextCR : nextCR === -1 ? nextLF : nextLF < nextCR ? nextLF : nextCR;
      if (eol === -1) {
        this.#pending.push(Buffer.from(buf.subarray(start)));
        this.#pendingLen += n - start;
        return;
      }
      if (this.#pendingLen > 0) {
        this.#pending.push(buf.subarray(start, eol));
        const line = Buffer.concat(this.#pending, this.#pendingLen + eol - start);
        this.#pending = [];
        this.#pendingLen = 0;
        this.#line(line, 0, line.length);
      } else {
        this.#line(buf, start, eol);
      }
      if (buf[eol] === CR) {
        if (eol + 1 < n) {
          if (buf[eol + 1] === LF) {
            start = eol + 2;
            continue;
          }
        } else {
          this.#skipLF = true;
        }
      }
      start = eol + 1;
    }
  }

  /** End of input: process an unterminated last line and dispatch a pending event (lenient). */
  end(): void {
    if (this.#pendingLen > 0) {
      const line = Buffer.concat(this.#pending, this.#pendingLen);
      this.#pending = [];
      this.#pendingLen = 0;
      this.#line(line, 0, line.length);
    }
    this.#dispatch();
    this.#skipLF = false;
  }

  #line(buf: Buffer, s: number, e: number): void {
    if (this.#firstLine) {
      this.#firstLine = false;
      if (e - s >= 3 && buf[s] === 0xef && buf[s + 1] === 0xbb && buf[s + 2] === 0xbf) s += 3;
    }
    if (s === e) {
      this.#dispatch();
      return;
    }
    const c0 = buf[s];
    if (c0 === COLON) {
      if (this.onComment) this.onComment(buf.toString('utf8', s + 1, e));
      return;
    }
    // Fast path for the field that carries nearly every byte: "data:".
    if (
      c0 === 0x64 &&
      e - s >= 5 &&
      buf[s + 1] === 0x61 &&
      buf[s + 2] === 0x74 &&
      buf[s + 3] === 0x61 &&
      buf[s + 4] === COLON
    ) {
      let v = s + 5;
      if (v < e && buf[v] === SPACE) v++;
      this.#addData(buf.toString('utf8', v, e));
      return;
    }
    let colon = s;
    while (colon < e && buf[colon] !== COLON) colon++;
    const name = buf.toString('utf8', s, colon);
    let v = colon + 1;
    if (v < e && buf[v] === SPACE) v++;
    const value = colon < e ? buf.toString('utf8', v, e) : '';
    switch (name) {
      case 'data':
        this.#addData(value); // "data" without a colon: an empty data line
        break;
      case 'event':
        this.#event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.#lastId = value;
        break;
      default: // "retry" and unknown fields: nothing to do for a proxy
        break;
    }
  }

  #addData(value: string): void {
    if (this.#data === undefined) this.#data = value;
    else (this.#moreData ??= []).push(value);
  }

  #dispatch(): void {
    const first = this.#data;
    const event = this.#event;
    this.#event = '';
    if (first === undefined) return;
    let data = first;
    if (this.#moreData !== undefined) {
      data = first + '\n' + this.#moreData.join('\n');
      this.#moreData = undefined;
    }
    this.#data = undefined;
    this.onEvent(data, event === '' ? 'message' : event, this.#lastId);
  }
}

/** Parse a complete SSE body into its events (tests, buffered responses). */
export function parseSse(body: Uint8Array | string): SseEvent[] {
  const events: SseEvent[] = [];
  const p = new SseParser((data, event, id) => {
    events.push(id === undefined ? { data, event } : { data, event, id });
  });
  p.push(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
  p.end();
  return events;
}

// ---- writer -------------------------------------------------------------------------------

export const SSE_DONE_TEXT = 'data: [DONE]\n\n';
export const SSE_DONE: Buffer = Buffer.from(SSE_DONE_TEXT);
export const EMPTY_BUFFER: Buffer = Buffer.alloc(0);

/** One `data:` event for a single-line payload such as JSON.stringify output (no newlines). */
export function sseData(json: string): string {
  return 'data: ' + json + '\n\n';
}

/** Any event: multi-line data is split into several `data:` lines; optional `event:` name. */
export function sseEvent(data: string, event?: string): string {
  const head = event === undefined ? '' : 'event: ' + event + '\n';
  if (!data.includes('\n') && !data.includes('\r')) return head + 'data: ' + data + '\n\n';
  return (
    head +
    data
      .split(/\r\n|\r|\n/)
      .map((l) => 'data: ' + l + '\n')
      .join('') +
    '\n'
  );
}
