// The Helm chart with the real helm binary: lint and template under default and non-default
// values; every rendered manifest (CRDs included) validated against the Kubernetes 1.34 API with
// unknown fields rejected; the Envoy bootstrap equal to the `tierflow envoy-config` template; the
// generated certificate valid for the webhook Service; least-privilege RBAC.
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ValidateFunction } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { chartEnvoyBootstrap, renderChartEnvoyTemplate } from '../../src/k8s/chart-files.js';
import { parseInjectorFile } from '../../src/k8s/injector-config.js';
import { CHART, find, helm, renderChart, valuesFile, type Manifest } from './helm.js';
import { compileExtra, validateManifest } from './k8s-schema.js';

const NON_DEFAULT = {
  fullnameOverride: 'llm-router',
  image: { repository: 'registry.example.com/tierflow', tag: '1.2.3', pullPolicy: 'Always' },
  imagePullSecrets: [{ name: 'regcred' }],
  controller: {
    replicas: 3,
    logLevel: 'debug',
    resyncSeconds: 60,
    podAnnotations: { 'example.com/team': 'platform' },
    nodeSelector: { 'kubernetes.io/os': 'linux' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'infra', effect: 'NoSchedule' }],
    priorityClassName: 'system-cluster-critical',
  },
  serviceAccount: { name: 'router-sa', annotations: { 'example.com/owner': 'platform' } },
  webhook: {
    failurePolicy: 'Ignore',
    timeoutSeconds: 5,
    namespaceSelectorExpressions: [{ key: 'environment', operator: 'In', values: ['prod', 'staging'] }],
    objectSelector: { matchExpressions: [{ key: 'tierflow.dev/skip', operator: 'DoesNotExist' }] },
    certManager: { enabled: true, duration: '2160h' },
  },
  sidecar: {
    listenerPort: 18080,
    healthPort: 16020,
    failOpen: true,
    bufferLimitBytes: 8388608,
    credentialsSecret: '',
    env: [{ name: 'TIERFLOW_LOG_LEVEL', value: 'debug' }],
    namespaces: ['team-a', 'team-b'],
    sharedLimits: {
      redisUrl: 'rediss://redis.tierflow.svc:6380/0',
      passwordSecret: { name: 'tierflow-redis', key: 'redis-password' },
      syncIntervalMs: 250,
    },
  },
  envoy: { healthPort: 16021, image: { repository: 'mirror.example.com/envoy', tag: 'v1.36.2' } },
  metrics: { serviceMonitor: { enabled: true, interval: '15s', labels: { release: 'prometheus' } } },
};

const CERT_MANAGER_WITH_ISSUER = {
  controller: { replicas: 1 },
  webhook: { certManager: { enabled: true, issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer' } } },
};

let extra: Record<string, ValidateFunction>;

/** ServiceMonitor and cert-manager kinds are not part of the Kubernetes API: small strict schemas of the fields used. */
async function extraValidators() {
  const str = { type: 'string' };
  const strMap = { type: 'object', additionalProperties: str };
  const selector = {
    type: 'object',
    additionalProperties: false,
    properties: { matchLabels: strMap },
  };
  return {
    'monitoring.coreos.com/v1/ServiceMonitor': await compileExtra({
      type: 'object',
      additionalProperties: false,
      required: ['selector', 'endpoints'],
      properties: {
        selector,
        namespaceSelector: {
          type: 'object',
          additionalProperties: false,
          properties: { matchNames: { type: 'array', items: str } },
        },
        endpoints: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            properties: { port: str, path: str, interval: str, scrapeTimeout: str },
          },
        },
      },
    }),
    'cert-manager.io/v1/Issuer': await compileExtra({
      type: 'object',
      additionalProperties: false,
      properties: { selfSigned: { type: 'object', additionalProperties: false } },
    }),
    'cert-manager.io/v1/Certificate': await compileExtra({
      type: 'object',
      additionalProperties: false,
      required: ['secretName', 'issuerRef'],
      properties: {
        secretName: str,
        duration: str,
        commonName: str,
        dnsNames: { type: 'array', items: str },
        privateKey: {
          type: 'object',
          additionalProperties: false,
          properties: {
            algorithm: { enum: ['RSA', 'ECDSA', 'Ed25519'] },
            size: { type: 'integer' },
            rotationPolicy: { enum: ['Always', 'Never'] },
          },
        },
        issuerRef: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: { name: str, kind: { enum: ['Issuer', 'ClusterIssuer'] }, group: str },
        },
      },
    }),
  };
}

async function expectAllValid(manifests: Manifest[]) {
  const problems: string[] = [];
  for (const m of manifests) {
    for (const p of await validateManifest(m, extra)) problems.push(`${m.kind}/${m.metadata?.name}: ${p}`);
  }
  expect(problems).toEqual([]);
}

function container(manifests: Manifest[]) {
  return find(manifests, 'Deployment').spec.template.spec.containers[0];
}

describe('Helm chart', () => {
  let defaults: Manifest[];
  let custom: Manifest[];

  beforeAll(async () => {
    extra = await extraValidators();
    defaults = renderChart();
    custom = renderChart(NON_DEFAULT, 'llm-system', 'router');
  });

  it('passes helm lint (strict) with default and non-default values', () => {
    for (const values of [{}, NON_DEFAULT, CERT_MANAGER_WITH_ISSUER]) {
      const r = helm([
        'lint',
        '--strict',
        CHART,
        '--namespace',
        'tierflow-system',
        '--values',
        valuesFile(values),
      ]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    }
  });

  it('renders only manifests valid against the Kubernetes 1.34 API (unknown fields rejected)', async () => {
    await expectAllValid(defaults);
    await expectAllValid(custom);
    await expectAllValid(renderChart(CERT_MANAGER_WITH_ISSUER));
    const kinds = (ms: Manifest[]) => [...new Set(ms.map((m) => m.kind))].sort();
    expect(kinds(defaults)).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'CustomResourceDefinition',
      'Deployment',
      'MutatingWebhookConfiguration',
      'PodDisruptionBudget',
      'Role',
      'RoleBinding',
      'Secret',
      'Service',
      'ServiceAccount',
    ]);
    expect(kinds(custom)).toEqual(expect.arrayContaining(['Certificate', 'Issuer', 'ServiceMonitor']));
    expect(kinds(custom)).not.toContain('Secret'); // cert-manager writes it
    // The validator is not a rubber stamp: a misspelt field fails.
    const broken = structuredClone(find(defaults, 'Deployment'));
    broken.spec.template.spec.containers[0].readinesProbe = {};
    expect((await validateManifest(broken)).join()).toContain("'readinesProbe'");
  });

  it('fails to render values that cannot work', () => {
    for (const bad of [
      { webhook: { failurePolicy: 'Maybe' } },
      { sidecar: { runAsUser: 0 } },
      { envoy: { healthPort: 10000 } },
      { sidecar: { sharedLimits: { redisUrl: 'memcached://cache:11211' } } },
    ]) {
      const r = helm(['template', 'tf', CHART, '--values', valuesFile(bad)]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/must (be|not be|differ)/);
    }
  });

  it('ships the generated CRDs unchanged', () => {
    const crds = defaults.filter((m) => m.kind === 'CustomResourceDefinition');
    expect(crds.map((c) => c.metadata.name).sort()).toEqual([
      'llmproviders.tierflow.dev',
      'routingpolicies.tierflow.dev',
      'virtualkeys.tierflow.dev',
    ]);
    for (const crd of crds) {
      const file = join(CHART, 'crds', `tierflow.dev_${crd.spec.names.plural}.yaml`);
      expect(crd).toEqual(parse(readFileSync(file, 'utf8')));
    }
  });

  it('renders the Envoy bootstrap from the `tierflow envoy-config` template, for any values', () => {
    expect(
      readFileSync(join(CHART, 'files', 'envoy.yaml'), 'utf8'),
      'stale: run node_modules/.bin/node scripts/gen-chart-files.ts',
    ).toBe(renderChartEnvoyTemplate());
    const bootstrap = (ms: Manifest[]) => parse(find(ms, 'ConfigMap', '-envoy').data['envoy.yaml']);
    expect(bootstrap(defaults)).toEqual(
      chartEnvoyBootstrap({
        listenerPort: 10000,
        healthPort: 15121,
        failOpen: false,
        bufferLimitBytes: 33554432,
      }),
    );
    expect(bootstrap(custom)).toEqual(
      chartEnvoyBootstrap({
        listenerPort: 18080,
        healthPort: 16021,
        failOpen: true,
        bufferLimitBytes: 8388608,
      }),
    );
  });

  it('configures the injector from the values', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tierflow-injector-'));
    for (const [ms, expectPort, secret] of [
      [defaults, 10000, 'tierflow-credentials'],
      [custom, 18080, undefined],
    ] as const) {
      writeFileSync(join(dir, 'envoy.yaml'), find(ms, 'ConfigMap', '-envoy').data['envoy.yaml']);
      const text = (find(ms, 'ConfigMap', '-injector').data['injector.yaml'] as string).replace(
        '/etc/tierflow/envoy/envoy.yaml',
        join(dir, 'envoy.yaml'),
      );
      const { config } = parseInjectorFile(text, dir);
      expect(config.listenerPort).toBe(expectPort);
      expect(config.defaultCredentialsSecret).toBe(secret);
      expect(config.tierflowUid).toBeGreaterThan(0);
      expect(parse(config.envoyBootstrap)).toEqual(parse(find(ms, 'ConfigMap', '-envoy').data['envoy.yaml']));
    }
    const customCfg = parse(find(custom, 'ConfigMap', '-injector').data['injector.yaml']);
    expect(customCfg.tierflowImage).toBe('registry.example.com/tierflow:1.2.3');
    expect(customCfg.envoyImage).toBe('mirror.example.com/envoy:v1.36.2');
    expect(customCfg.tierflowEnv).toEqual([
      { name: 'TIERFLOW_LOG_LEVEL', value: 'debug' },
      { name: 'TIERFLOW_REDIS_URL', value: 'rediss://redis.tierflow.svc:6380/0' },
      { name: 'TIERFLOW_REDIS_SYNC_MS', value: '250' },
      {
        name: 'TIERFLOW_REDIS_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'tierflow-redis', key: 'redis-password' } },
      },
    ]);
    // without a Redis URL, nothing about Redis reaches the sidecar
    const defaultCfg = parse(find(defaults, 'ConfigMap', '-injector').data['injector.yaml']);
    expect(JSON.stringify(defaultCfg.tierflowEnv ?? [])).not.toMatch(/REDIS/);
  });

  it('runs the controller locked down, with probes, and rolls it when the injector config changes', () => {
    const c = container(defaults);
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(find(defaults, 'Deployment').spec.template.spec.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.args).toContain('--fail-closed');
    expect(container(custom).args).not.toContain('--fail-closed');
    expect(container(custom).args).toContain('--log-level=debug');
    const annotations = (ms: Manifest[]) => find(ms, 'Deployment').spec.template.metadata.annotations;
    expect(annotations(defaults)['checksum/injector']).toMatch(/^[0-9a-f]{64}$/);
    expect(annotations(defaults)['checksum/injector']).not.toBe(
      annotations(renderChart({ sidecar: { listenerPort: 12345 } }))['checksum/injector'],
    );
  });

  it('generates a webhook certificate valid for the Service, and its CA bundle', () => {
    const secret = find(defaults, 'Secret', '-webhook-tls');
    const pem = (k: string) => Buffer.from(secret.data[k], 'base64').toString('utf8');
    const cert = new X509Certificate(pem('tls.crt'));
    const ca = new X509Certificate(pem('ca.crt'));
    expect(cert.checkHost('tf-tierflow-webhook.tierflow-system.svc')).toBe(
      'tf-tierflow-webhook.tierflow-system.svc',
    );
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(createPublicKey(createPrivateKey(pem('tls.key'))).export({ format: 'pem', type: 'spki' })).toBe(
      cert.publicKey.export({ format: 'pem', type: 'spki' }),
    );
    const webhook = find(defaults, 'MutatingWebhookConfiguration');
    for (const w of webhook.webhooks) {
      expect(w.clientConfig.caBundle).toBe(secret.data['ca.crt']);
      expect(w.clientConfig.service).toMatchObject({
        name: 'tf-tierflow-webhook',
        namespace: 'tierflow-system',
        port: 443,
      });
      expect(w.failurePolicy).toBe('Fail');
      expect(w.sideEffects).toBe('None');
      expect(w.reinvocationPolicy).toBe('IfNeeded');
      expect(w.matchConditions.length).toBeGreaterThan(0);
      expect(w.namespaceSelector.matchExpressions[0].values).toEqual([
        'kube-system',
        'kube-node-lease',
        'tierflow-system',
      ]);
    }
    const svc = find(defaults, 'Service', '-webhook');
    expect(svc.spec.ports[0]).toMatchObject({ port: 443, targetPort: 'webhook' });
  });

  it('uses cert-manager when enabled', () => {
    const webhook = find(custom, 'MutatingWebhookConfiguration');
    expect(webhook.metadata.annotations['cert-manager.io/inject-ca-from']).toBe(
      'llm-system/llm-router-webhook-tls',
    );
    for (const w of webhook.webhooks) {
      expect(w.clientConfig.caBundle).toBeUndefined();
      expect(w.failurePolicy).toBe('Ignore');
      expect(w.objectSelector).toEqual(NON_DEFAULT.webhook.objectSelector);
      expect(w.namespaceSelector.matchExpressions).toContainEqual(
        NON_DEFAULT.webhook.namespaceSelectorExpressions[0],
      );
    }
    const certificate = find(custom, 'Certificate');
    expect(certificate.spec.dnsNames).toContain('llm-router-webhook.llm-system.svc');
    expect(certificate.spec.secretName).toBe('llm-router-webhook-tls');
    expect(find(renderChart(CERT_MANAGER_WITH_ISSUER), 'Certificate').spec.issuerRef).toEqual({
      name: 'corp-ca',
      kind: 'ClusterIssuer',
    });
  });

  it('grants least privilege: status only, one Lease, read-only config for sidecars, never Secrets', () => {
    for (const ms of [defaults, custom]) {
      const rules = ms
        .filter((m) => m.kind === 'ClusterRole' || m.kind === 'Role')
        .flatMap((r) => r.rules.map((x: Manifest) => ({ role: r.metadata.name, ...x })));
      for (const r of rules) {
        expect(r.resources.join(), r.role).not.toMatch(/secrets|\*/);
        expect(r.verbs.join(), r.role).not.toMatch(/\*|delete|escalate|bind|impersonate/);
        expect(r.apiGroups.join(), r.role).not.toBe('*');
      }
      const writes = rules.filter((r) =>
        r.verbs.some((v: string) => ['create', 'update', 'patch'].includes(v)),
      );
      for (const w of writes) {
        if (w.apiGroups[0] === 'tierflow.dev')
          expect(w.resources.every((x: string) => x.endsWith('/status'))).toBe(true);
        else expect(w.resources).toEqual(['leases']);
      }
      const leaseUpdate = rules.find((r) => r.resources[0] === 'leases' && r.verbs.includes('update'))!;
      const leaseName = leaseUpdate.resourceNames[0];
      expect(container(ms).args).toContain(`--lease-name=${leaseName}`);
    }
    const bindings = custom.filter(
      (m) => m.kind === 'RoleBinding' && m.roleRef.name.endsWith('-config-reader'),
    );
    expect(bindings.map((b) => [b.metadata.namespace, b.subjects[0].name])).toEqual([
      ['team-a', 'system:serviceaccounts:team-a'],
      ['team-b', 'system:serviceaccounts:team-b'],
    ]);
    // Router ConfigMaps (classifier.configMapRef): read-only, for the sidecars only in their
    // namespaces (through the RoleBindings above), for the controller everywhere.
    const configMapsRead = {
      apiGroups: [''],
      resources: ['configmaps'],
      verbs: ['get', 'list', 'watch'],
    };
    const reader = find(custom, 'ClusterRole', '-config-reader');
    expect(reader.rules).toEqual([
      {
        apiGroups: ['tierflow.dev'],
        resources: ['llmproviders', 'routingpolicies', 'virtualkeys'],
        verbs: ['get', 'list', 'watch'],
      },
      configMapsRead,
    ]);
    for (const ms of [defaults, custom]) {
      const controller = ms.find((m) => m.kind === 'ClusterRole' && m.metadata.name.endsWith('-controller'))!;
      expect(controller.rules).toContainEqual(configMapsRead);
      const binding = ms.find(
        (m) => m.kind === 'ClusterRoleBinding' && m.roleRef.name === controller.metadata.name,
      )!;
      expect(binding.subjects[0].kind).toBe('ServiceAccount');
    }
    expect(
      custom.filter((m) => m.kind === 'ClusterRoleBinding' && m.roleRef.name.endsWith('-config-reader')),
    ).toEqual([]);
  });

  it('has NOTES with the next steps', () => {
    const r = helm(['install', 'tf', CHART, '--dry-run=client', '--namespace', 'tierflow-system']);
    expect(r.status, r.stderr).toBe(0);
    const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
    for (const step of [
      'tierflow.dev/inject',
      'create secret generic',
      'kubectl -n APP_NS apply -f examples/',
      'OPENAI_BASE_URL',
      'x-tierflow',
    ]) {
      expect(notes).toContain(step);
    }
    // Adding a namespace through the chart keeps the ones already there (--set replaces lists).
    const more = helm([
      'install',
      'tf',
      CHART,
      '--dry-run=client',
      '--namespace',
      'tierflow-system',
      '--set',
      'sidecar.namespaces={team-a,team-b}',
    ]);
    expect(more.stdout).toContain("--set 'sidecar.namespaces={team-a,team-b,APP_NS}'");
    expect(notes).toContain("--set 'sidecar.namespaces={APP_NS}'");
    expect(notes).toContain('create rolebinding');
  });
});
