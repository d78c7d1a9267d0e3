// A request with a large body leaves tens of MB of garbage behind (the body's buffers, its text,
// the parsed prompt, the upstream body). V8 collects it only when it next needs room, and an idle
// process allocates nothing, so RSS stayed at its peak for good (83 MB idle, 230-300 MB after a
// few 30 MB bodies). After such a request ends, one major GC is asked for, asynchronous
// (concurrent marking: the event loop keeps serving), at most one pending at a time.
// Needs --expose-gc, which bin/tierflow.js, `npm start` and the image set; without it this does
// nothing. The image also sets MALLOC_MMAP_THRESHOLD_ so that the freed buffers go back to the
// system instead of staying in the allocator's heap (see DEVELOPERS.md, Runtime flags).

/** Bodies from this size on are worth a collection once their request is over. */
export const LARGE_BODY_BYTES = 1024 * 1024;
const DELAY_MS = 100;

type Gc = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;
let pending: NodeJS.Timeout | undefined;

/** The request that carried `bytes` of body is over (answered, failed or abandoned). */
export function releaseAfterRequest(bytes: number): void {
  if (bytes < LARGE_BODY_BYTES || pending) return;
  const gc = (globalThis as { gc?: Gc }).gc;
  if (typeof gc !== 'function') return;
  pending = setTimeout(() => {
    pending = undefined;
    gc({ type: 'major', execution: 'async' });
  }, DELAY_MS);
  pending.unref();
}
