// Writes the Grafana dashboard and the Prometheus alerting rules, for plain installs
// (observability/) and for the chart (charts/tierflow/files/), from scripts/observability/.
// Run: node_modules/.bin/node scripts/gen-observability.ts   (`--check` only compares)
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { observabilityFiles } from './observability/files.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
let stale = false;
for (const [rel, text] of Object.entries(observabilityFiles())) {
  const file = join(root, rel);
  if (existsSync(file) && readFileSync(file, 'utf8') === text) continue;
  if (process.argv.includes('--check')) {
    process.stderr.write(`stale: ${rel}\n`);
    stale = true;
  } else {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    process.stdout.write(`wrote ${rel}\n`);
  }
}
if (stale) {
  process.stderr.write('run: node_modules/.bin/node scripts/gen-observability.ts\n');
  process.exitCode = 1;
}
