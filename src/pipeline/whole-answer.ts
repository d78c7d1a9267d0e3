// A non-streamed upstream exchange read whole, straight from undici's dispatch handler: the
// answer's chunks are collected as they arrive, with no response stream (undici's request() API
// builds a Readable, an async resource and their events for every answer, a visible share of the
// gateway's CPU per request). Streamed answers keep going through request() and its body stream.
import type { Dispatcher } from 'undici';
import type { UpstreamHeaders } from '../core/providers/types.js';

export interface WholeAnswer {
  statusCode: number;
  headers: UpstreamHeaders;
  /** The body; empty when reading an error body failed (it only explains the error). */
  body: Buffer;
}

/**
 * Called when the response headers arrive: true to read the whole body, false for an error
 * status, whose body is read up to `errorBodyLimit` bytes and becomes empty if reading it fails.
 */
export type OnHeaders = (statusCode: number) => boolean;

const EMPTY = Buffer.alloc(0);

/** A 2xx answer grew past the limit a request may hold: the exchange was aborted. */
export class AnswerTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`the answer is larger than ${limit} bytes`);
  }
}

export class WholeAnswerHandler implements Dispatcher.DispatchHandler {
  readonly answer: Promise<WholeAnswer>;
  #resolve!: (a: WholeAnswer) => void;
  #reject!: (err: Error) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #abortReason: Error | undefined;
  #settled = false;
  #statusCode = 0;
  #headers: UpstreamHeaders = {};
  /** The status says answer (read it whole), not error (read its body up to errorBodyLimit). */
  #answering = false;
  /** Bytes to keep: the answer limit for an answer, the error body limit for an error; -1 before headers. */
  #limit = -1;
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(
    private readonly onHeaders: OnHeaders,
    private readonly errorBodyLimit: number,
    private readonly answerLimit = Infinity,
  ) {
    this.answer = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** Ends the exchange with `reason` (the deadline, the client gone): the answer rejects with it. */
  abort(reason: Error): void {
    if (this.#settled) return;
    if (this.#controller) this.#controller.abort(reason);
    else this.#abortReason = reason; // not on a connection yet: aborted as soon as it is
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abortReason) controller.abort(this.#abortReason);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[]>,
  ): void {
    if (statusCode < 200) return; // 1xx: informational
    this.#statusCode = statusCode;
    this.#headers = headers;
    this.#answering = this.onHeaders(statusCode);
    this.#limit = this.#answering ? this.answerLimit : this.errorBodyLimit;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return;
    if (this.#size + chunk.length > this.#limit) {
      if (this.#answering) {
        // An answer beyond what one request may hold: nothing of it is kept.
        const err = new AnswerTooLargeError(this.#limit);
        this.#settled = true;
        this.#chunks = [];
        this.#reject(err);
        controller.abort(err);
        return;
      }
      // An error body beyond the limit: what arrived explains enough.
      this.#settle();
      controller.abort(new Error('error body over the limit'));
      return;
    }
    this.#size += chunk.length;
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    this.#settle();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.#settled) return;
    if (this.#limit !== -1 && !this.#answering) {
      // Reading an error body failed: the error is answered without it.
      this.#chunks = [];
      this.#size = 0;
      this.#settle();
      return;
    }
    this.#settled = true;
    this.#chunks = [];
    this.#reject(err);
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    const chunks = this.#chunks;
    const body =
      chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#size);
    this.#chunks = [];
    this.#resolve({ statusCode: this.#statusCode, headers: this.#headers, body });
  }
}
