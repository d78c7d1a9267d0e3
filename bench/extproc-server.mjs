// Child process of bench/extproc.ts: one ext_proc server on a Unix socket, either TierFlow's
// sidecar processor or the no-op processor (same protos, same server code, same transport).
// Plain JavaScript on purpose: a .ts entry makes Node load its TypeScript stripper (tens of MB
// of RSS the real sidecar, which runs dist/, never has), which would distort the memory figures.
//   node bench/extproc-server.mjs tierflow|noop <socket>
// Prints "ready" when listening; answers {cpu, rss, heap} on an IPC "stats" message.
import { loadConfigFile } from '../dist/config/load.js';
import { HealthRegistry } from '../dist/core/health/registry.js';
import { Router } from '../dist/core/router.js';
import { noopProcessor } from '../dist/extproc/noop.js';
import { sidecarProcessor } from '../dist/extproc/processor.js';
import { ExtProcServer } from '../dist/extproc/server.js';
import { silentLogger } from '../dist/observe/log.js';
import { Metrics } from '../dist/observe/metrics.js';
import { UpstreamClient } from '../dist/pipeline/client.js';

const [kind, socketPath] = process.argv.slice(2);
if ((kind !== 'tierflow' && kind !== 'noop') || !socketPath) {
  process.stderr.write('usage: node bench/extproc-server.mjs tierflow|noop <socket>\n');
  process.exit(2);
}

let processor;
if (kind === 'tierflow') {
  // The shipped default config (keys are placeholders: the bench never reaches a provider).
  const loaded = loadConfigFile('tierflow.yaml', {
    env: { OPENAI_API_KEY: 'sk-bench', ANTHROPIC_API_KEY: 'sk-bench', GEMINI_API_KEY: 'sk-bench' },
  });
  if (!loaded.config) throw new Error('tierflow.yaml did not load');
  const router = new Router({ config: loaded.config, health: new HealthRegistry() });
  processor = sidecarProcessor({
    router,
    metrics: new Metrics(),
    log: silentLogger,
    client: new UpstreamClient(),
  });
} else {
  processor = noopProcessor;
}

const server = new ExtProcServer({
  processor,
  socketPath,
  onInternalError: (e) => process.stderr.write(`internal error: ${e?.stack ?? e}\n`),
});
await server.start();
process.on('message', (m) => {
  if (m === 'stats') {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    process.send({
      cpuUs: cpu.user + cpu.system,
      rssMb: mem.rss / 1048576,
      heapMb: mem.heapUsed / 1048576,
      streams: server.activeStreams,
    });
  } else if (m === 'gc' && typeof globalThis.gc === 'function') {
    globalThis.gc();
    process.send('gc-done');
  } else if (m === 'stop') {
    void server.shutdown(1000).then(() => process.exit(0));
  }
});
process.stdout.write('ready\n');
