// The injector config from the chart's values, computed the way templates/configmap-injector.yaml
// and templates/configmap-envoy.yaml render it (a test compares the two under several value sets).
// Used by `tierflow inject`, which must produce what the webhook of an installed chart would.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1EnvVar, V1ResourceRequirements } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { EXT_PROC_SERVICE } from '../extproc/protos.js';
import { chartEnvoyBootstrap, EXT_PROC_SOCKET } from './chart-files.js';
import type { InjectorConfig, PullPolicy } from './inject.js';

/** The chart shipped with this package (charts/tierflow next to src/ and dist/). */
export const CHART_DIR = join(import.meta.dirname, '..', '..', 'charts', 'tierflow');

type Values = Record<string, unknown>;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Helm's merge of a user values file over the chart's: maps merge, everything else replaces. */
export function mergeValues(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else {
      const b = base[k];
      out[k] = isObject(v) && isObject(b) ? mergeValues(b, v) : v;
    }
  }
  return out;
}

/** The chart's values.yaml merged with the given files (later files win), and its appVersion. */
export function loadChartValues(
  files: readonly string[] = [],
  chartDir = CHART_DIR,
): {
  values: Values;
  appVersion: string;
} {
  const read = (f: string) => (parse(readFileSync(f, 'utf8'), { version: '1.1' }) ?? {}) as Values;
  let values = read(join(chartDir, 'values.yaml'));
  for (const f of files) values = mergeValues(values, read(f));
  const chart = read(join(chartDir, 'Chart.yaml'));
  return { values, appVersion: String(chart.appVersion) };
}

const int = (v: unknown) => Math.trunc(Number(v));

export function injectorConfigFromValues(values: Values, appVersion: string): InjectorConfig {
  const map = (v: unknown): Values => (isObject(v) ? v : {});
  const sidecar = map(values.sidecar);
  const envoy = map(values.envoy);
  const image = map(values.image);
  for (const [name, v] of [
    ['sidecar.runAsUser', sidecar.runAsUser],
    ['envoy.runAsUser', envoy.runAsUser],
    ['sidecar.sharedGroup', sidecar.sharedGroup],
  ] as const)
    if (int(v) === 0) throw new Error(`${name} must not be 0 (root)`);

  const args = [
    'sidecar',
    `--socket=${EXT_PROC_SOCKET}`,
    `--health-port=${int(sidecar.healthPort)}`,
    `--body-limit=${int(sidecar.bufferLimitBytes)}`,
    ...(sidecar.metricsPort ? [`--metrics-port=${int(sidecar.metricsPort)}`] : []),
    ...((sidecar.extraArgs as string[] | undefined) ?? []),
  ];
  const env: V1EnvVar[] = [...((sidecar.env as V1EnvVar[] | undefined) ?? [])];
  const shared = map(sidecar.sharedLimits);
  if (shared.redisUrl) {
    const url = String(shared.redisUrl);
    if (!url.startsWith('redis://') && !url.startsWith('rediss://'))
      throw new Error('sidecar.sharedLimits.redisUrl must be a redis:// or rediss:// URL');
    env.push({ name: 'TIERFLOW_REDIS_URL', value: url });
    env.push({ name: 'TIERFLOW_REDIS_SYNC_MS', value: String(int(shared.syncIntervalMs)) });
    const pw = map(shared.passwordSecret);
    if (pw.name)
      env.push({
        name: 'TIERFLOW_REDIS_PASSWORD',
        valueFrom: { secretKeyRef: { name: String(pw.name), key: String(pw.key) } },
      });
  }
  const bootstrap = chartEnvoyBootstrap({
    listenerPort: int(sidecar.listenerPort),
    healthPort: int(envoy.healthPort),
    healthAddress: String(envoy.healthAddress),
    failOpen: Boolean(sidecar.failOpen),
    bufferLimitBytes: int(sidecar.bufferLimitBytes),
  });
  const envoyImage = map(envoy.image);
  return {
    tierflowImage: `${String(image.repository)}:${String(image.tag || appVersion)}`,
    envoyImage: `${String(envoyImage.repository)}:${String(envoyImage.tag)}`,
    imagePullPolicy: image.pullPolicy as PullPolicy,
    envoyImagePullPolicy: envoyImage.pullPolicy as PullPolicy,
    envoyBootstrap: stringify(bootstrap, { lineWidth: 0, version: '1.1' }),
    envoyArgs: (envoy.args as string[] | undefined) ?? [],
    listenerPort: int(sidecar.listenerPort),
    tierflowProbe: { port: int(sidecar.healthPort), readinessService: EXT_PROC_SERVICE },
    envoyProbe: { port: int(envoy.healthPort), path: '/ready' },
    tierflowArgs: args,
    tierflowEnv: env,
    resources: {
      tierflow: sidecar.resources as V1ResourceRequirements,
      envoy: envoy.resources as V1ResourceRequirements,
    },
    tierflowUid: int(sidecar.runAsUser),
    envoyUid: int(envoy.runAsUser),
    sharedGid: int(sidecar.sharedGroup),
    ...(sidecar.metricsPort ? { tierflowMetricsPort: int(sidecar.metricsPort) } : {}),
    ...(sidecar.credentialsSecret ? { defaultCredentialsSecret: String(sidecar.credentialsSecret) } : {}),
  };
}
