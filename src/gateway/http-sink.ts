// ResponseSink over a node:http ServerResponse, with backpressure and client-abort detection.
import type { ServerResponse } from 'node:http';
import type { ResponseSink } from '../upstream/attempts.js';

export class HttpSink implements ResponseSink {
  readonly #controller = new AbortController();
  readonly signal = this.#controller.signal;

  constructor(
    private readonly res: ServerResponse,
    private readonly extraHeaders: Record<string, string>,
  ) {
    res.on('close', () => {
      if (!res.writableFinished) this.#controller.abort();
    });
  }

  start(status: number, headers: Record<string, string>): void {
    this.res.writeHead(status, { ...headers, ...this.extraHeaders });
  }

  write(chunk: Buffer): void | Promise<void> {
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

  end(): void {
    this.res.end();
  }
}
