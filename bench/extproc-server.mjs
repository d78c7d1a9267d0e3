// Child process of bench/extproc.ts: one ext_proc server on a Unix socket: TierFlow's sidecar
// processor, the no-op processor, or the rewrite-only processor (same protos, same server code,
// same transport). rewrite-only does the least any router must do with the request body: parse it
// (JSON.parse: a body must be valid JSON before it is sent on) and answer with the body, the model
// replaced on the client's bytes the way TierFlow does it, and its content-length; every other
// phase is answered like the no-op. It is the floor of the body rewrite, not a router.
// Plain JavaScript on purpose: a .ts entry makes Node load its TypeScript stripper (tens of MB
// of RSS the real sidecar, which runs dist/, never has), which would distort the memory figures.
//   node bench/extproc-server.mjs tierflow|noop|rewrite <socket>
// Prints "ready" when listening; answers {cpu, rss, heap} on an IPC "stats" message.
import { loadConfigFile } from '../dist/config/load.js';
import { HealthRegistry } from '../dist/core/health/registry.js';
import { Router } from '../dist/core/router.js';
import { spliceModel } from '../dist/core/raw-json.js';
import { noopAnswer, noopProcessor } from '../dist/extproc/noop.js';
import { sidecarProcessor } from '../dist/extproc/processor.js';
import { ExtProcServer } from '../dist/extproc/server.js';
import { createLogger } from '../dist/observe/log.js';
import { Metrics } from '../dist/observe/metrics.js';
import { UpstreamClient } from '../dist/pipeline/client.js';

const [kind, socketPath] = process.argv.slice(2);
if (!['tierflow', 'noop', 'rewrite'].includes(kind) || !socketPath) {
  process.stderr.write('usage: node bench/extproc-server.mjs tierflow|noop|rewrite <socket>\n');
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
    // As the sidecar logs in production (src/cli/sidecar.ts): one info line per request, to a
    // stdout the bench drains.
    log: createLogger('info').child({ component: 'sidecar' }),
    client: new UpstreamClient(),
  });
} else if (kind === 'rewrite') {
  const rewriteBody = (body) => {
    JSON.parse(body.toString('utf8'));
    const spliced = spliceModel(body, 'gpt-6-luna');
    if (!spliced) throw new Error('rewrite-only: the bench body has no top-level model');
    const length = { header: { key: 'content-length', raw_value: Buffer.from(String(spliced.length)) } };
    return {
      request_body: {
        response: {
          status: 'CONTINUE',
          header_mutation: { set_headers: [length] },
          body_mutation: { body: spliced },
          clear_route_cache: true,
        },
      },
    };
  };
  processor = () => ({
    onMessage: (req) =>
      req.request === 'request_body' ? rewriteBody(req.request_body.body) : noopAnswer(req),
    onEnd: () => {},
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
