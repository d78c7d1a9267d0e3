// Writes the CRDs generated from the one config schema:
//   crds/tierflow.dev_<plural>.yaml and charts/tierflow/crds/tierflow.dev_<plural>.yaml
// Run: node_modules/.bin/node --experimental-transform-types scripts/gen-crds.ts (`--check` only
// compares). The CRD rules read the provider table, which loads the translators: their classes use
// TypeScript-only syntax (parameter properties) that plain type stripping refuses.
import './run-from-source.ts';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { CRD_KEYS, crdFileName, renderCrdYaml } = await import('../src/k8s/crds.js');

const check = process.argv.includes('--check');
let stale = 0;
for (const dir of ['crds', join('charts', 'tierflow', 'crds')]) {
  mkdirSync(join(root, dir), { recursive: true });
  for (const key of CRD_KEYS) {
    const file = join(root, dir, crdFileName(key));
    const text = renderCrdYaml(key);
    const current = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    if (current === text) continue;
    if (check) {
      process.stderr.write(`stale: ${join(dir, crdFileName(key))}\n`);
      stale++;
    } else {
      writeFileSync(file, text);
      process.stdout.write(`wrote ${join(dir, crdFileName(key))}\n`);
    }
  }
}
if (stale) {
  process.stderr.write('run: npm run gen:k8s\n');
  process.exitCode = 1;
}
