// The layers of src/ import in one direction only (DEVELOPERS.md, "Layout"). A new import that
// points the wrong way fails here with the file and the import named.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

/** Which top-level folders of src/ each folder may import (besides itself). */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  observe: ['core'],
  config: ['core', 'observe'],
  state: ['core', 'observe'],
  runtime: ['core', 'config', 'observe'],
  pipeline: ['core', 'observe'],
  gateway: ['core', 'observe', 'pipeline'],
  extproc: ['core', 'observe', 'pipeline'],
  k8s: ['core', 'config', 'observe', 'extproc'],
  cli: ['core', 'config', 'state', 'runtime', 'observe', 'pipeline', 'gateway', 'extproc', 'k8s'],
};

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else if (e.name.endsWith('.ts')) yield p;
  }
}

const IMPORT = /(?:^|\n)\s*(?:import|export)[^'";]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g;

function wrongWay(): string[] {
  const out: string[] = [];
  for (const file of files(SRC)) {
    const layer = relative(SRC, file).split('/')[0]!;
    const allowed = ALLOWED[layer];
    if (!allowed) {
      out.push(`${relative(SRC, file)}: folder '${layer}' has no rule in this test`);
      continue;
    }
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const spec = (m[1] ?? m[2])!;
      const target = relative(SRC, resolve(dirname(file), spec)).split('/')[0]!;
      if (target !== layer && !allowed.includes(target)) out.push(`${relative(SRC, file)} imports ${spec}`);
    }
  }
  return out;
}

describe('import directions', () => {
  it('every src/ folder imports only the layers below it', () => {
    expect(wrongWay()).toEqual([]);
  });

  it('finds a wrong-way import (the check itself works)', () => {
    const sample = "import { listModels } from '../gateway/models.js';";
    const m = [...sample.matchAll(IMPORT)];
    expect(m.map((x) => x[1])).toEqual(['../gateway/models.js']);
    expect(ALLOWED.extproc).not.toContain('gateway');
    expect(ALLOWED.extproc).not.toContain('k8s');
  });
});
