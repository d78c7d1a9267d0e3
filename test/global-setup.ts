// Some tests run the built CLI (bin/tierflow.js -> dist/), as users do. On a fresh clone dist/
// may be missing, and after an edit it is stale: build it first whenever any source file is
// newer than the build, so `npm test` needs no separate build step.
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

function newest(dir: string, ext: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, ext));
    else if (e.name.endsWith(ext)) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

function oldestBuilt(): number {
  try {
    return statSync(join(root, 'dist/cli/main.js')).mtimeMs;
  } catch {
    return 0;
  }
}

export default function setup(): void {
  const sources = Math.max(newest(join(root, 'src'), '.ts'), newest(join(root, 'src'), '.json'));
  if (oldestBuilt() >= sources) return;
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
}
