// `tierflow inject`: the injector config it derives from values.yaml equals the one the chart
// renders for the webhook (real helm, several value sets), and the command injects the pod
// templates of a multi-document file the way the webhook does, leaving everything else alone.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { injectPod } from '../../src/k8s/inject.js';
import { applyPatch, injectObject, secretsByNamespace } from '../../src/k8s/inject-manifests.js';
import { parseInjectorFile } from '../../src/k8s/injector-config.js';
import { injectorConfigFromValues, loadChartValues, mergeValues } from '../../src/k8s/injector-values.js';
import { find, renderChart } from './helm.js';
import { validateManifest } from './k8s-schema.js';

const OTHER_VALUES = {
  image: { repository: 'registry.example.com/tierflow', tag: '1.2.3', pullPolicy: 'Always' },
  sidecar: {
    listenerPort: 18080,
    healthPort: 16020,
    metricsPort: 0,
    failOpen: true,
    bufferLimitBytes: 8388608,
    credentialsSecret: '',
    runAsUser: 2000,
    sharedGroup: 3000,
    extraArgs: ['--max-message-timeout-ms=60000'],
    env: [{ name: 'TIERFLOW_LOG_LEVEL', value: 'debug' }],
    sharedLimits: {
      redisUrl: 'rediss://redis.tierflow.svc:6380/0',
      passwordSecret: { name: 'tierflow-redis', key: 'redis-password' },
      syncIntervalMs: 250,
    },
  },
  envoy: {
    healthPort: 16021,
    healthAddress: '0.0.0.0',
    runAsUser: 1337,
    image: { repository: 'mirror.example.com/envoy', tag: 'v1.36.13', pullPolicy: 'Never' },
  },
};

function helmInjector(values: Record<string, unknown>) {
  const chart = renderChart(values);
  const dir = mkdtempSync(join(tmpdir(), 'tierflow-inject-'));
  writeFileSync(join(dir, 'envoy.yaml'), find(chart, 'ConfigMap', '-envoy').data['envoy.yaml']);
  const text = (find(chart, 'ConfigMap', '-injector').data['injector.yaml'] as string).replace(
    '/etc/tierflow/envoy/envoy.yaml',
    join(dir, 'envoy.yaml'),
  );
  return parseInjectorFile(text, dir).config;
}

describe('tierflow inject', () => {
  for (const [name, values] of [
    ['default values', {}],
    ['other values', OTHER_VALUES],
  ] as const) {
    it(`derives the injector config the chart renders (${name})`, () => {
      const fromHelm = helmInjector(values);
      const { values: merged, appVersion } = loadChartValues();
      const ours = injectorConfigFromValues(mergeValues(merged, values), appVersion);
      const { envoyBootstrap: a, ...restOurs } = ours;
      const { envoyBootstrap: b, ...restHelm } = fromHelm;
      expect(restOurs).toEqual(restHelm);
      expect(parse(a)).toEqual(parse(b));
    });
  }

  it('applies JSON patches the way the API server does', () => {
    const doc: Record<string, any> = { a: { list: [1, 2] }, 'x/y': {} };
    applyPatch(doc, [
      { op: 'add', path: '/a/list/0', value: 0 },
      { op: 'add', path: '/a/list/-', value: 3 },
      { op: 'add', path: '/x~1y/k', value: 'v' },
      { op: 'replace', path: '/a/list/1', value: 'one' },
      { op: 'remove', path: '/a/list/2' },
    ]);
    expect(doc).toEqual({ a: { list: [0, 'one', 3] }, 'x/y': { k: 'v' } });
    expect(() => applyPatch(doc, [{ op: 'add', path: '/nope/x', value: 1 }])).toThrow(/does not exist/);
  });

  it('injects Pods and pod templates exactly like the webhook, and mounts the Secrets of --objects', async () => {
    const { values, appVersion } = loadChartValues();
    const config = injectorConfigFromValues(values, appVersion);
    const template = {
      metadata: { labels: { app: 'chat' }, annotations: { 'tierflow.dev/inject': 'true' } },
      spec: { containers: [{ name: 'chat', image: 'example.com/chat:1' }] },
    };
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'chat', namespace: 'team-a' },
      spec: { selector: { matchLabels: { app: 'chat' } }, template },
    };
    const objects = [
      {
        apiVersion: 'tierflow.dev/v1alpha1',
        kind: 'LLMProvider',
        metadata: { name: 'openai', namespace: 'team-a' },
        spec: {
          type: 'openai',
          credentials: { secretRef: { name: 'openai-key', key: 'apiKey' } },
          models: [],
        },
      },
      {
        apiVersion: 'tierflow.dev/v1alpha1',
        kind: 'LLMProvider',
        metadata: { name: 'other', namespace: 'team-b' },
        spec: { type: 'openai', credentials: { secretRef: { name: 'not-ours', key: 'apiKey' } }, models: [] },
      },
    ];
    const secrets = secretsByNamespace(objects, 'default');
    const out = injectObject(deployment, { config, namespace: 'default', secrets }).object as any;

    // What the webhook returns for the same pod, applied.
    const pod: any = structuredClone({ metadata: template.metadata, spec: template.spec });
    applyPatch(pod, injectPod(pod, config, { namespace: 'team-a', referencedSecrets: ['openai-key'] }).patch);
    expect(out.spec.template).toEqual(pod);
    const secretNames = out.spec.template.spec.volumes
      .filter((v: any) => v.secret)
      .map((v: any) => v.secret.secretName);
    expect(secretNames.sort()).toEqual(['openai-key', 'tierflow-credentials']);
    expect(await validateManifest(out)).toEqual([]);
  });

  it('prints a multi-document file injected, other objects unchanged (the command)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tierflow-inject-cli-'));
    const cron = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'nightly' },
      spec: {
        schedule: '0 3 * * *',
        jobTemplate: {
          spec: {
            template: {
              metadata: { annotations: { 'tierflow.dev/inject': 'true' } },
              spec: { restartPolicy: 'Never', containers: [{ name: 'job', image: 'example.com/job:1' }] },
            },
          },
        },
      },
    };
    const service = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'chat' },
      spec: { ports: [{ port: 80 }] },
    };
    const plainPod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'plain' },
      spec: { containers: [{ name: 'x', image: 'example.com/x:1' }] },
    };
    writeFileSync(join(dir, 'app.yaml'), [cron, service, plainPod].map((d) => stringify(d)).join('---\n'));
    writeFileSync(
      join(dir, 'objects.yaml'),
      stringify({
        apiVersion: 'tierflow.dev/v1alpha1',
        kind: 'VirtualKey',
        metadata: { name: 'team' },
        spec: { secretRef: { name: 'team-keys', key: 'key' } },
      }),
    );
    writeFileSync(join(dir, 'values.yaml'), stringify({ sidecar: { listenerPort: 18080 } }));
    const r = spawnSync(
      process.execPath,
      [
        'bin/tierflow.js',
        'inject',
        '-f',
        join(dir, 'app.yaml'),
        '--objects',
        join(dir, 'objects.yaml'),
        '--values',
        join(dir, 'values.yaml'),
      ],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toContain('CronJob/nightly: injected');
    expect(r.stderr).toContain('Pod/plain: not injected');
    expect(r.status).toBe(0);
    const docs = parseAllDocuments(r.stdout, { version: '1.1' }).map((d) => d.toJS());
    expect(docs).toHaveLength(3);
    const podSpec = docs[0].spec.jobTemplate.spec.template.spec;
    expect(podSpec.initContainers.map((c: any) => c.name)).toEqual(['tierflow', 'tierflow-envoy']);
    expect(podSpec.containers[0].env).toEqual([
      { name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:18080/v1' },
    ]);
    expect(podSpec.volumes.filter((v: any) => v.secret).map((v: any) => v.secret.secretName)).toContain(
      'team-keys',
    );
    expect(docs[1]).toEqual(service);
    expect(docs[2]).toEqual(plainPod);
  });

  it('fails clearly without -f', () => {
    const r = spawnSync(process.execPath, ['bin/tierflow.js', 'inject'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('-f FILE is required');
  });
});
