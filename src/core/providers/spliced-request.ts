// An upstream request whose body is the client's bytes with the model replaced (SplicedBody).
// The gateway reads `body` (made on first read); the sidecar reads `bodySplice` and writes the
// pieces straight into its answer, so the rewritten body is never materialised there.
import type { SplicedBody } from '../raw-json.js';
import type { UpstreamRequest } from './types.js';

export class SplicedRequest implements UpstreamRequest {
  readonly method = 'POST' as const;
  #splice: SplicedBody | undefined;
  #body: Buffer | undefined;

  constructor(
    readonly url: URL,
    readonly headers: Record<string, string>,
    splice: SplicedBody,
  ) {
    this.#splice = splice;
  }

  /** The pieces, until `body` is replaced (the engine releases it once the answer commits). */
  get bodySplice(): SplicedBody | undefined {
    return this.#body === undefined ? this.#splice : undefined;
  }

  get body(): Buffer {
    return (this.#body ??= this.#splice!.bytes());
  }

  set body(body: Buffer) {
    this.#body = body;
    this.#splice = undefined;
  }
}
