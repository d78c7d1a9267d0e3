#!/usr/bin/env -S node --max-semi-space-size=4 --single-threaded-gc --expose-gc
// V8 flags (see bench/gateway.ts): --max-semi-space-size=4 caps the young generation (half the
// RSS under load, same latency); --single-threaded-gc keeps GC off other cores, which a sidecar
// with a CPU limit of one core or less does not have (p99 overhead 11 ms -> 2.5 ms on 2 cores).
// --expose-gc lets a request with a large body ask for a collection once it is over
// (src/pipeline/release-memory.ts): RSS goes back down instead of staying at its peak.
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (run automatically by `npm install`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('tierflow: dist/ is missing; run `npm run build` (or `npm install`) first.\n');
  process.exit(1);
}
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `tierflow: Node.js ${process.versions.node} is too old; Node.js 24 LTS is required ` +
      "(use `npm start` / `npx tierflow`, which run the project's own Node 24).\n",
  );
  process.exit(1);
}
await import(entry.href);
