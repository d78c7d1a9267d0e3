// ResponseSink over a node:http ServerResponse, with backpressure and client-abort detection.
import type { ServerResponse } from 'node:http';
import { COST_HEADER } from '../core/response-headers.js';
import type { ResponseSink } from '../pipeline/send.js';

export class HttpSink implements ResponseSink {
  readonly #controller = new AbortController();
  readonly signal = this.#controller.signal;

  constructor(
    private readonly res: ServerResponse,
    /** Sent as x-request-id with the answer's headers. */
    private readonly requestId: string,
  ) {
    res.on('close', () => {
      if (res.writableFinished) return;
      this.#controller.abort();
      this.#gone?.(this.signal.reason as Error);
    });
  }

  #gone: ((reason: Error) => void) | undefined;

  onGone(gone: ((reason: Error) => void) | undefined): void {
    this.#gone = gone;
  }

  #trailers = false;
  /** A body of known length is held and sent with end(): headers and body leave in one write. */
  #whole = false;
  #held: Buffer | undefined;

  /** `headers` is the caller's own object: the sink's headers are added to it, not to a copy. */
  start(status: number, headers: Record<string, string>): void {
    this.#whole = headers['content-length'] !== undefined;
    // A stream's exact cost is known only at its end: announce it as a trailer (chunked only).
    this.#trailers = !this.#whole && headers['content-type']?.startsWith('text/event-stream') === true;
    if (this.#trailers) headers.trailer = COST_HEADER;
    headers['x-request-id'] = this.requestId;
    this.res.writeHead(status, headers);
  }

  write(chunk: Buffer): void | Promise<void> {
    if (this.#whole) {
      this.#held = this.#held ? Buffer.concat([this.#held, chunk]) : chunk;
      return;
    }
    if (this.res.write(chunk) || this.signal.aborted) return;
    return new Promise((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }

  end(trailers?: Record<string, string>): void {
    if (trailers && this.#trailers && !this.signal.aborted) this.res.addTrailers(trailers);
    if (this.#held) this.res.end(this.#held);
    else this.res.end();
  }
}
