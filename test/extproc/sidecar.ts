// TierFlow's ext_proc server on a fresh Unix socket behind the Envoy harness, configured from the
// bootstrap we ship: the sidecar as the end-to-end tests drive it.
import { envoyBootstrap } from '../../src/extproc/envoy-config.js';
import { type SidecarOptions, sidecarProcessor } from '../../src/extproc/processor.js';
import { ExtProcServer } from '../../src/extproc/server.js';
import type { AttemptDeps } from '../../src/pipeline/send.js';
import { EnvoyHarness, type HarnessOptions, harnessOptionsFromBootstrap } from './envoy-harness.js';
import { tempSocket } from './helpers.js';

export interface SidecarUnderTest {
  server: ExtProcServer;
  harness: EnvoyHarness;
  /** The harness listener, e.g. http://127.0.0.1:PORT (the OpenAI base URL is `${url}/v1`). */
  url: string;
  /** Envoy's harness options, for a second harness on the same ext_proc server. */
  options: HarnessOptions;
  /** Closes the harness and the ext_proc server; what `deps` holds is the caller's to close. */
  close(): Promise<void>;
}

export async function startSidecar(
  deps: AttemptDeps,
  options: { processor?: SidecarOptions; harness?: Partial<HarnessOptions> } = {},
): Promise<SidecarUnderTest> {
  const socketPath = tempSocket();
  const server = new ExtProcServer({ processor: sidecarProcessor(deps, options.processor), socketPath });
  await server.start();
  const harnessOptions = {
    ...harnessOptionsFromBootstrap(envoyBootstrap({ extProcSocket: socketPath }), `unix:${socketPath}`),
    ...options.harness,
  };
  const harness = new EnvoyHarness(harnessOptions);
  const url = await harness.listen();
  return {
    server,
    harness,
    url,
    options: harnessOptions,
    async close() {
      await harness.close();
      await server.shutdown(1000);
    },
  };
}

/**
 * Re-cuts upstream bytes into pieces of the given sizes in turn, carried over from chunk to chunk:
 * Envoy hands them on as the network cut them, never at SSE event boundaries.
 */
export function rechunkInto(pieces: readonly number[]): (chunk: Buffer) => Buffer[] {
  let next = 0;
  return (chunk) => {
    const out: Buffer[] = [];
    for (let i = 0; i < chunk.length;) {
      const n = pieces[next++ % pieces.length]!;
      out.push(chunk.subarray(i, i + n));
      i += n;
    }
    return out;
  };
}
