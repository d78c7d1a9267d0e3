// A ResponseSink that keeps the whole response in memory: reactive failover in the sidecar runs
// the shared attempt runner (src/pipeline/attempts.ts) into it, then answers Envoy with one
// immediate_response carrying status, headers and body (an SSE stream, buffered whole).
import type { ResponseSink } from '../pipeline/send.js';

export class BufferSink implements ResponseSink {
  status = 0;
  headers: Record<string, string> = {};
  readonly #chunks: Buffer[] = [];
  #size = 0;
  #ended = false;
  readonly #controller = new AbortController();
  readonly signal = this.#controller.signal;

  constructor(private readonly limit: number) {}

  start(status: number, headers: Record<string, string>): void {
    this.status = status;
    this.headers = headers;
  }

  write(chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#size > this.limit) {
      // Larger than an immediate_response may carry: stop the attempt rather than grow without bound.
      this.#controller.abort(new Error('response larger than the sidecar buffer limit'));
      return;
    }
    this.#chunks.push(chunk);
  }

  end(trailers?: Record<string, string>): void {
    // Buffered whole, so values known only at the end (exact cost) can still go in the headers.
    if (trailers) Object.assign(this.headers, trailers);
    this.#ended = true;
  }

  get ended(): boolean {
    return this.#ended;
  }

  get overflowed(): boolean {
    return this.#size > this.limit;
  }

  /** The Envoy stream went away (client gone): attempts stop. */
  abort(): void {
    this.#controller.abort(new Error('ext_proc stream closed'));
  }

  body(): Buffer {
    return this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
  }
}
