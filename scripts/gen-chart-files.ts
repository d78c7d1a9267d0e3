// Writes charts/tierflow/files/envoy.yaml from the Envoy bootstrap template of `tierflow envoy-config`
// (src/extproc/envoy-config.ts via src/k8s/chart-files.ts).
// Run: node_modules/.bin/node scripts/gen-chart-files.ts   (`--check` only compares)
import './run-from-source.ts';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { renderChartEnvoyTemplate } = await import('../src/k8s/chart-files.js');

const rel = join('charts', 'tierflow', 'files', 'envoy.yaml');
const file = join(root, rel);
const text = renderChartEnvoyTemplate();
const current = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
if (current === text) {
  // up to date
} else if (process.argv.includes('--check')) {
  process.stderr.write(`stale: ${rel}\nrun: node_modules/.bin/node scripts/gen-chart-files.ts\n`);
  process.exitCode = 1;
} else {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  process.stdout.write(`wrote ${rel}\n`);
}
