// Incremental decoder for the AWS event-stream binary framing (application/vnd.amazon.eventstream),
// used by Bedrock ConverseStream. Each message is:
//   total length (u32 BE) | headers length (u32 BE) | prelude CRC32 | headers | payload | message CRC32
// Bytes arrive cut anywhere (mid-prelude, mid-header, mid-payload); push() buffers until a whole
// message is there and returns every complete message. Whole messages are checked and parsed by
// @smithy/eventstream-codec (the AWS SDK's own codec: both CRCs, header types); this file only
// does the framing, plus an early prelude-CRC check so a corrupt length can't make us wait for
// (or buffer) gigabytes that will never come.
import { crc32 } from 'node:zlib';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';

const PRELUDE_BYTES = 12;
const MIN_MESSAGE_BYTES = 16;
/** The event-stream spec caps a message at 16 MiB (and headers at 128 KiB). */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const MAX_HEADER_BYTES = 128 * 1024;

export type HeaderValue = string | number | boolean | Uint8Array | Date;

export interface EventStreamMessage {
  headers: Record<string, HeaderValue>;
  body: Uint8Array;
}

export class EventStreamError extends Error {
  override name = 'EventStreamError';
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);

export class EventStreamDecoder {
  private pending: Buffer = Buffer.alloc(0);
  private failed: EventStreamError | undefined;

  private readonly maxMessageBytes: number;

  constructor(maxMessageBytes = MAX_MESSAGE_BYTES) {
    this.maxMessageBytes = maxMessageBytes;
  }

  /** Bytes received that do not yet form a whole message. */
  get pendingBytes(): number {
    return this.pending.length;
  }

  /**
   * Adds bytes and returns the messages completed by them. Throws EventStreamError on corrupt
   * framing (bad CRC, impossible lengths); after that the decoder stays failed.
   */
  push(chunk: Uint8Array): EventStreamMessage[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.pending = this.pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.pending, chunk]);
    }
    const out: EventStreamMessage[] = [];
    try {
      while (this.pending.length >= PRELUDE_BYTES) {
        const total = this.pending.readUInt32BE(0);
        const headersLen = this.pending.readUInt32BE(4);
        const preludeCrc = this.pending.readUInt32BE(8);
        if (crc32(this.pending.subarray(0, 8)) !== preludeCrc) {
          throw new EventStreamError('event-stream prelude checksum mismatch');
        }
        if (total < MIN_MESSAGE_BYTES || total > this.maxMessageBytes) {
          throw new EventStreamError(`event-stream message length ${total} out of range`);
        }
        if (headersLen > MAX_HEADER_BYTES || headersLen > total - MIN_MESSAGE_BYTES) {
          throw new EventStreamError(`event-stream headers length ${headersLen} out of range`);
        }
        if (this.pending.length < total) break;
        const frame = this.pending.subarray(0, total);
        this.pending = this.pending.subarray(total);
        let decoded;
        try {
          decoded = codec.decode(frame);
        } catch (err) {
          throw new EventStreamError(`event-stream message rejected: ${(err as Error).message}`);
        }
        const headers: Record<string, HeaderValue> = {};
        for (const [name, h] of Object.entries(decoded.headers)) {
          const v = h.value as unknown;
          headers[name] =
            typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && !(v instanceof Date)
              ? Number((v as { valueOf(): number }).valueOf()) // Int64
              : (v as HeaderValue);
        }
        out.push({ headers, body: decoded.body });
      }
    } catch (err) {
      this.failed = err instanceof EventStreamError ? err : new EventStreamError(String(err));
      this.pending = Buffer.alloc(0);
      throw this.failed;
    }
    return out;
  }
}

/** Encodes one message (the mock server and tests use this; the decoder side needs no encoder). */
export function encodeEventStreamMessage(
  headers: Record<string, string>,
  body: Uint8Array | string,
): Uint8Array {
  const hs: Record<string, { type: 'string'; value: string }> = {};
  for (const [k, v] of Object.entries(headers)) hs[k] = { type: 'string', value: v };
  return codec.encode({ headers: hs, body: typeof body === 'string' ? fromUtf8(body) : body });
}

export const headerString = (m: EventStreamMessage, name: string): string | undefined => {
  const v = m.headers[name];
  return typeof v === 'string' ? v : undefined;
};
