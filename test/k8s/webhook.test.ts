// The mutating webhook end to end: the controller serves HTTPS with the certificate the chart
// generates, injects what the chart configures, and answers real AdmissionReview requests. Each
// returned JSON patch is applied to the pod (fast-json-patch, RFC 6902) and the result is checked,
// including against the Kubernetes 1.34 Pod schema.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fastJsonPatch from 'fast-json-patch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Controller } from '../../src/k8s/controller.js';
import { ENVOY_CONTAINER, secretVolumeName, TIERFLOW_CONTAINER } from '../../src/k8s/inject.js';
import { injectorConfigLoader } from '../../src/k8s/injector-config.js';
import { PATH_ANNOTATED, PATH_NAMESPACE, type AdmissionReview } from '../../src/k8s/webhook.js';
import { FakeApiServer, waitFor } from './fake-apiserver.js';
import { openaiProvider } from './fixtures.js';
import { find, renderChart, type Manifest } from './helm.js';
import { validateManifest } from './k8s-schema.js';

const { applyPatch } = fastJsonPatch;
type Pod = Manifest;
const NS = 'team-a';
const SERVICE_HOST = 'tf-tierflow-webhook.tierflow-system.svc';

describe('sidecar injection webhook', () => {
  let server: FakeApiServer;
  let controller: Controller;
  let ca: string;
  let port: number;
  let uid = 0;

  beforeAll(async () => {
    const chart = renderChart();
    const dir = mkdtempSync(join(tmpdir(), 'tierflow-webhook-'));
    const tls = find(chart, 'Secret', '-webhook-tls').data;
    const b64 = (k: string) => Buffer.from(tls[k], 'base64').toString('utf8');
    writeFileSync(join(dir, 'tls.crt'), b64('tls.crt'));
    writeFileSync(join(dir, 'tls.key'), b64('tls.key'));
    ca = b64('ca.crt');
    writeFileSync(join(dir, 'envoy.yaml'), find(chart, 'ConfigMap', '-envoy').data['envoy.yaml']);
    writeFileSync(
      join(dir, 'injector.yaml'),
      (find(chart, 'ConfigMap', '-injector').data['injector.yaml'] as string).replace(
        '/etc/tierflow/envoy/envoy.yaml',
        join(dir, 'envoy.yaml'),
      ),
    );

    server = await new FakeApiServer().start();
    server.create('llmproviders', NS, 'openai', openaiProvider());
    server.create('llmproviders', NS, 'bedrock', {
      type: 'bedrock',
      region: 'eu-west-1',
      credentials: {
        awsAccessKeyIdRef: { name: 'aws', key: 'id' },
        awsSecretAccessKeyRef: { name: 'aws', key: 'secret' },
      },
      models: [
        {
          name: 'nova-lite',
          tier: 'lightweight',
          pricing: { inputPerMTok: 0.06, outputPerMTok: 0.24 },
          contextWindow: 300000,
          maxOutputTokens: 5000,
        },
      ],
    });
    server.create('virtualkeys', NS, 'app', { secretRef: { name: 'team-keys', key: 'app' } });
    server.create('llmproviders', 'other', 'x', {
      ...openaiProvider(),
      credentials: { secretRef: { name: 'not-ours', key: 'k' } },
    });

    controller = new Controller({
      kubeConfig: server.kubeConfig(),
      namespace: 'tierflow-system',
      identity: 'test',
      leaderElection: false,
      webhook: {
        port: 0,
        host: '127.0.0.1',
        certFile: join(dir, 'tls.crt'),
        keyFile: join(dir, 'tls.key'),
        injector: injectorConfigLoader(join(dir, 'injector.yaml')),
        failClosed: true,
      },
      metrics: { port: 0, host: '127.0.0.1' },
      debounceMs: 10,
    });
    await controller.start();
    await waitFor(() => controller.synced, 5000, 'informers');
    port = controller.webhookAddress!.port;
  });

  afterAll(async () => {
    await controller?.stop();
    await server?.close();
  });

  /** POSTs an AdmissionReview over TLS, verifying the certificate for the Service's DNS name. */
  function post(path: string, body: unknown): Promise<{ status: number; json: AdmissionReview }> {
    const text = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'POST',
          ca,
          servername: SERVICE_HOST,
          // A connection per request: a kept-alive one may be closed by the server's idle timeout
          // just as a slow test reuses it (ECONNRESET under load).
          agent: false,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const raw = Buffer.concat(chunks).toString('utf8');
            const json = res.headers['content-type'] === 'application/json' ? JSON.parse(raw) : {};
            resolve({ status: res.statusCode ?? 0, json });
          });
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  }

  function review(pod: Pod, extra: Record<string, unknown> = {}) {
    return {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: `req-${++uid}`,
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        requestKind: { group: '', version: 'v1', kind: 'Pod' },
        requestResource: { group: '', version: 'v1', resource: 'pods' },
        namespace: NS,
        operation: 'CREATE',
        userInfo: {
          username: 'system:serviceaccount:kube-system:replicaset-controller',
          groups: ['system:serviceaccounts'],
        },
        object: pod,
        oldObject: null,
        dryRun: false,
        options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
        ...extra,
      },
    };
  }

  /** Sends the pod through the webhook and applies the returned patch. */
  async function admit(pod: Pod, path = PATH_ANNOTATED, extra: Record<string, unknown> = {}) {
    const body = review(pod, extra);
    const { status, json } = await post(path, body);
    expect(status).toBe(200);
    expect(json.apiVersion).toBe('admission.k8s.io/v1');
    expect(json.kind).toBe('AdmissionReview');
    const response = json.response!;
    expect(response.uid).toBe(body.request.uid);
    expect(response.allowed).toBe(true);
    if (!response.patch) return { pod, response, ops: [] as { op: string; path: string }[] };
    expect(response.patchType).toBe('JSONPatch');
    const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'));
    const patched = applyPatch(structuredClone(pod), ops, /* validate */ true, /* mutate */ false)
      .newDocument as Pod;
    return { pod: patched, response, ops };
  }

  const appPod = (annotations?: Record<string, string>, spec: Record<string, unknown> = {}): Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'chat-7d9f8-',
      namespace: NS,
      labels: { app: 'chat' },
      ...(annotations ? { annotations } : {}),
    },
    spec: {
      serviceAccountName: 'chat',
      initContainers: [{ name: 'migrate', image: 'example.com/chat:1', command: ['migrate'] }],
      containers: [
        {
          name: 'chat',
          image: 'example.com/chat:1',
          env: [{ name: 'LOG_LEVEL', value: 'info' }],
          ports: [{ containerPort: 8080 }],
        },
        { name: 'worker', image: 'example.com/chat:1', args: ['worker'] },
      ],
      volumes: [{ name: 'data', emptyDir: {} }],
      ...spec,
    },
  });

  it('leaves a pod without the annotation alone', async () => {
    const { response, ops } = await admit(appPod());
    expect(response.patch).toBeUndefined();
    expect(ops).toEqual([]);
  });

  it('injects Envoy and tierflow as native sidecars into an annotated pod', async () => {
    const before = appPod({ 'tierflow.dev/inject': 'true' });
    const { pod } = await admit(before);
    const spec = pod.spec;

    // Native sidecars first, the app's own init container after them.
    expect(spec.initContainers.map((c: Pod) => c.name)).toEqual([
      TIERFLOW_CONTAINER,
      ENVOY_CONTAINER,
      'migrate',
    ]);
    const tierflow = spec.initContainers[0];
    const envoy = spec.initContainers[1];
    for (const c of [tierflow, envoy]) {
      expect(c.restartPolicy).toBe('Always');
      expect(c.securityContext).toMatchObject({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(c.securityContext.runAsUser).toBeGreaterThan(0);
      expect(c.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
      expect(c.startupProbe && c.readinessProbe && c.livenessProbe).toBeTruthy();
    }
    // One shared primary group: Envoy may connect to the tierflow socket (mode 0660).
    expect(tierflow.securityContext.runAsGroup).toBe(envoy.securityContext.runAsGroup);
    expect(tierflow.securityContext.runAsUser).not.toBe(envoy.securityContext.runAsUser);
    // Liveness and startup ask about the process; readiness about a loaded configuration.
    expect(tierflow.startupProbe.grpc.service).toBeUndefined();
    expect(tierflow.readinessProbe.grpc.service).toBe('envoy.service.ext_proc.v3.ExternalProcessor');
    expect(envoy.imagePullPolicy).toBe('IfNotPresent');
    expect(tierflow.image).toBe('ghcr.io/tierflow/tierflow:0.1.0');
    expect(tierflow.startupProbe.grpc.port).toBe(15120);
    expect(tierflow.args).toEqual([
      'sidecar',
      '--socket=/var/run/tierflow/sock/extproc.sock',
      '--health-port=15120',
      '--body-limit=33554432',
      '--metrics-port=15190',
    ]);
    expect(tierflow.ports.map((p: Pod) => p.containerPort)).toEqual([15120, 15190]);
    // Envoy talks to the socket the sidecar listens on.
    expect(JSON.stringify(parse(envoy.args[1]))).toContain(
      '"pipe":{"path":"/var/run/tierflow/sock/extproc.sock"}',
    );
    expect(envoy.readinessProbe.httpGet).toEqual({ path: '/ready', port: 15121 });

    // Envoy gets the chart's bootstrap.
    expect(envoy.args[0]).toBe('--config-yaml');
    const bootstrap = parse(envoy.args[1]);
    expect(bootstrap.static_resources.listeners[0].address.socket_address).toEqual({
      address: '127.0.0.1',
      port_value: 10000,
    });
    // Envoy's admin API is on a 0600 socket in a volume only Envoy mounts, not on the pod's 127.0.0.1.
    expect(bootstrap.admin.address).toEqual({ pipe: { path: '/tmp/envoy-admin.sock', mode: 0o600 } });
    const envoyTmp = envoy.volumeMounts.find((m: Pod) => m.mountPath === '/tmp').name;
    expect(
      [...spec.initContainers, ...spec.containers]
        .filter((c: Pod) => (c.volumeMounts ?? []).some((m: Pod) => m.name === envoyTmp))
        .map((c: Pod) => c.name),
    ).toEqual([ENVOY_CONTAINER]);
    // The probe listener (pod IP, dual-stack) forwards GET /ready and the stats, nothing else.
    const healthListener = bootstrap.static_resources.listeners.find(
      (l: Pod) => l.name === 'tierflow_health',
    );
    expect(healthListener.address.socket_address).toEqual({
      address: '::',
      port_value: 15121,
      ipv4_compat: true,
    });
    const routes =
      healthListener.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes;
    expect(routes.filter((r: Pod) => r.route).map((r: Pod) => r.match.path)).toEqual([
      '/ready',
      '/stats',
      '/stats/prometheus',
    ]);
    expect(JSON.stringify(bootstrap)).not.toMatch(/port_value":9901/);

    // The shared socket volume is mounted in both sidecars, and in no app container.
    const socketMount = (c: Pod) =>
      (c.volumeMounts ?? []).find((m: Pod) => m.mountPath === '/var/run/tierflow/sock');
    expect(socketMount(tierflow).name).toBe(socketMount(envoy).name);
    expect(spec.volumes.find((v: Pod) => v.name === socketMount(tierflow).name).emptyDir).toBeDefined();

    // Credentials: the namespace's referenced Secrets plus the default one, mounted into tierflow only.
    const secretVolumes = spec.volumes.filter((v: Pod) => v.secret);
    expect(secretVolumes.map((v: Pod) => v.secret.secretName).sort()).toEqual([
      'aws',
      'openai',
      'team-keys',
      'tierflow-credentials',
    ]);
    for (const v of secretVolumes) {
      expect(v.secret.optional).toBe(true);
      // Root-owned files (no pod fsGroup): the tierflow UID reads them as "other".
      expect(v.secret.defaultMode).toBe(0o444);
      expect(v.name).toBe(secretVolumeName(v.secret.secretName));
      const users = [...spec.initContainers, ...spec.containers].filter((c: Pod) =>
        (c.volumeMounts ?? []).some((m: Pod) => m.name === v.name),
      );
      expect(users.map((c: Pod) => c.name)).toEqual([TIERFLOW_CONTAINER]);
    }
    expect(tierflow.volumeMounts.find((m: Pod) => m.name === secretVolumeName('openai')).mountPath).toBe(
      '/var/run/tierflow/secrets/openai',
    );
    expect(JSON.stringify(spec)).not.toContain('not-ours');

    // The API token reaches tierflow only; Envoy's token path is occupied by an empty volume.
    const tokenMount = (c: Pod) =>
      c.volumeMounts.find((m: Pod) => m.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount');
    expect(
      spec.volumes.find((v: Pod) => v.name === tokenMount(tierflow).name).projected.sources[0]
        .serviceAccountToken,
    ).toBeDefined();
    expect(spec.volumes.find((v: Pod) => v.name === tokenMount(envoy).name).emptyDir).toBeDefined();

    // The sidecar knows its namespace and config source.
    const env = Object.fromEntries(
      tierflow.env.map((e: Pod) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
    );
    expect(env).toMatchObject({
      TIERFLOW_NAMESPACE: 'metadata.namespace',
      TIERFLOW_CONFIG_SOURCE: 'kubernetes',
      TIERFLOW_SECRETS_DIR: '/var/run/tierflow/secrets',
    });
    expect(env.TIERFLOW_POLICIES).toBeUndefined();

    // Every app container calls through Envoy; existing env and volumes are kept.
    for (const c of spec.containers)
      expect(c.env).toContainEqual({ name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:10000/v1' });
    expect(spec.containers[0].env[0]).toEqual({ name: 'LOG_LEVEL', value: 'info' });
    expect(spec.volumes[0]).toEqual({ name: 'data', emptyDir: {} });
    expect(spec.initContainers[2]).toEqual(before.spec.initContainers[0]);
    expect(pod.metadata.annotations['tierflow.dev/injected']).toBe('v1');

    // The result is a valid Kubernetes 1.34 Pod.
    expect(await validateManifest(pod)).toEqual([]);
  });

  it('is idempotent: an injected pod comes back unchanged', async () => {
    const { pod: once } = await admit(appPod({ 'tierflow.dev/inject': 'true' }));
    const { pod: twice, response } = await admit(once);
    expect(response.patch).toBeUndefined();
    expect(twice).toEqual(once);
  });

  it('on reinvocation only adds OPENAI_BASE_URL to a container added after the first pass', async () => {
    const { pod: once } = await admit(appPod({ 'tierflow.dev/inject': 'true' }));
    once.spec.containers.push({ name: 'vault-agent', image: 'example.com/vault:1' });
    const { pod: again, ops } = await admit(once);
    expect(ops).toEqual([
      {
        op: 'add',
        path: '/spec/containers/2/env',
        value: [{ name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:10000/v1' }],
      },
    ]);
    expect(again.spec.initContainers).toHaveLength(3);
  });

  it('keeps an OPENAI_BASE_URL the user set', async () => {
    const pod = appPod({ 'tierflow.dev/inject': 'true' });
    pod.spec.containers[0].env.push({ name: 'OPENAI_BASE_URL', value: 'https://proxy.internal/v1' });
    const { pod: out } = await admit(pod);
    expect(out.spec.containers[0].env.filter((e: Pod) => e.name === 'OPENAI_BASE_URL')).toEqual([
      { name: 'OPENAI_BASE_URL', value: 'https://proxy.internal/v1' },
    ]);
    expect(out.spec.containers[1].env).toEqual([
      { name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:10000/v1' },
    ]);
  });

  it('labels the pod for the chart PodMonitor and annotates it for prometheus.io scraping', async () => {
    const monitor = find(renderChart({ metrics: { podMonitor: { enabled: true } } }), 'PodMonitor');
    const selected = (p: Pod) =>
      Object.entries(monitor.spec.selector.matchLabels as Record<string, string>).every(
        ([k, v]) => p.metadata.labels?.[k] === v,
      );
    const { pod } = await admit(appPod({ 'tierflow.dev/inject': 'true' }));
    expect(selected(pod)).toBe(true);
    expect(pod.metadata.labels.app).toBe('chat');
    const port = pod.spec.initContainers[0].ports.find((p: Pod) => p.name === 'tf-metrics').containerPort;
    expect(monitor.spec.podMetricsEndpoints[0].port).toBe('tf-metrics');
    expect(pod.metadata.annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': String(port),
      'prometheus.io/path': '/metrics',
    });
    expect(selected(appPod({ 'tierflow.dev/inject': 'true' }))).toBe(false);

    // An app that scrapes its own metrics through the annotations keeps them.
    const own = {
      'tierflow.dev/inject': 'true',
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '8080',
    };
    const { pod: app, response } = await admit(appPod(own));
    expect(app.metadata.annotations).toMatchObject({ 'prometheus.io/port': '8080' });
    expect(app.metadata.annotations['prometheus.io/path']).toBeUndefined();
    expect(selected(app)).toBe(true);
    expect(response.warnings?.join('\n')).toMatch(/prometheus\.io annotations are its own.*PodMonitor/);
  });

  it('leaves OPENAI_BASE_URL from envFrom alone unless the pod asks, and says so', async () => {
    const pod = appPod({ 'tierflow.dev/inject': 'true' });
    pod.spec.containers[0].envFrom = [{ configMapRef: { name: 'chat-config' } }];
    const { pod: out, response } = await admit(pod);
    // env would override envFrom: the container with envFrom keeps what it brings.
    expect(out.spec.containers[0].env.map((e: Pod) => e.name)).toEqual(['LOG_LEVEL']);
    expect(out.spec.containers[1].env).toEqual([
      { name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:10000/v1' },
    ]);
    expect((response.warnings ?? []).join('\n')).toMatch(
      /'chat' uses envFrom.*tierflow\.dev\/openai-base-url: "set"/,
    );

    const forced = appPod({ 'tierflow.dev/inject': 'true', 'tierflow.dev/openai-base-url': 'set' });
    forced.spec.containers[0].envFrom = [{ configMapRef: { name: 'chat-config' } }];
    const { pod: outForced } = await admit(forced);
    expect(outForced.spec.containers[0].env).toContainEqual({
      name: 'OPENAI_BASE_URL',
      value: 'http://127.0.0.1:10000/v1',
    });

    const skipped = await admit(
      appPod({ 'tierflow.dev/inject': 'true', 'tierflow.dev/openai-base-url': 'skip' }),
    );
    for (const c of skipped.pod.spec.containers)
      expect((c.env ?? []).some((e: Pod) => e.name === 'OPENAI_BASE_URL')).toBe(false);
    expect(skipped.pod.spec.initContainers[0].name).toBe(TIERFLOW_CONTAINER);
  });

  it('passes the chosen policies and extra Secrets from the annotations', async () => {
    const { pod } = await admit(
      appPod({
        'tierflow.dev/inject': 'true',
        'tierflow.dev/policy': 'fast, default',
        'tierflow.dev/secrets': 'extra-keys',
      }),
    );
    const tierflow = pod.spec.initContainers[0];
    expect(tierflow.env).toContainEqual({ name: 'TIERFLOW_POLICIES', value: 'fast,default' });
    expect(pod.spec.volumes.filter((v: Pod) => v.secret).map((v: Pod) => v.secret.secretName)).toContain(
      'extra-keys',
    );
  });

  it('honours the opt-out annotation and the namespace label path', async () => {
    const optedOut = await admit(appPod({ 'tierflow.dev/inject': 'false' }), PATH_NAMESPACE);
    expect(optedOut.response.patch).toBeUndefined();
    const byNamespace = await admit(appPod(), PATH_NAMESPACE);
    expect(byNamespace.pod.spec.initContainers[0].name).toBe(TIERFLOW_CONTAINER);
    const notOnAnnotatedPath = await admit(appPod(), PATH_ANNOTATED);
    expect(notOnAnnotatedPath.response.patch).toBeUndefined();
  });

  it('works on a pod with no initContainers, volumes, env or annotations besides the trigger', async () => {
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'bare', annotations: { 'tierflow.dev/inject': 'true' } },
      spec: { containers: [{ name: 'app', image: 'example.com/app:1' }] },
    };
    const { pod: out } = await admit(pod);
    expect(out.spec.initContainers.map((c: Pod) => c.name)).toEqual([TIERFLOW_CONTAINER, ENVOY_CONTAINER]);
    expect(out.spec.containers[0].env).toEqual([
      { name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:10000/v1' },
    ]);
    expect(await validateManifest(out)).toEqual([]);
  });

  it('does not inject hostNetwork pods, and lets other requests through untouched', async () => {
    const host = await admit(appPod({ 'tierflow.dev/inject': 'true' }, { hostNetwork: true }));
    expect(host.response.patch).toBeUndefined();
    expect(host.response.warnings?.join()).toMatch(/hostNetwork/);
    const update = await admit(appPod({ 'tierflow.dev/inject': 'true' }), PATH_ANNOTATED, {
      operation: 'UPDATE',
    });
    expect(update.response.patch).toBeUndefined();
    const dryRun = await admit(appPod({ 'tierflow.dev/inject': 'true' }), PATH_ANNOTATED, { dryRun: true });
    expect(dryRun.response.patch).toBeDefined();
  });

  it('answers malformed requests with 400 and counts results in its metrics', async () => {
    const bad = await post(PATH_ANNOTATED, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    expect(bad.status).toBe(400);
    const res = await fetch(`http://127.0.0.1:${controller.metricsAddress!.port}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/tierflow_controller_webhook_requests_total\{result="injected"\} [1-9]/);
    expect(text).toMatch(/tierflow_controller_webhook_requests_total\{result="skipped"\} [1-9]/);
    // The serving certificate's expiry (the chart's: generatedCertDays from now).
    const expiry = Number(
      /tierflow_controller_webhook_certificate_expiry_timestamp_seconds (\d+)/.exec(text)?.[1],
    );
    expect(expiry * 1000 - Date.now()).toBeGreaterThan(3000 * 86_400_000);
    const ready = await fetch(`http://127.0.0.1:${controller.metricsAddress!.port}/readyz`);
    expect(ready.status).toBe(200);
  });
});
