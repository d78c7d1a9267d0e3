// The injected pod, run the way Kubernetes runs it: the pod that `tierflow inject` (the webhook's
// code) produces with the chart's default values, its volumes laid out with the kubelet's owners
// and modes, the tierflow container's process run with its UID/GID/groups and umask 022, Envoy
// played by a process with Envoy's UID/GID, a real (fake) API server, and real requests from the
// official openai SDK through "Envoy" and TierFlow to a mock provider that checks the key.
//
// This is the test that catches what single-user tests cannot: a socket only its owner may connect
// to, a Secret its reader may not read, a sidecar that never starts without a configuration.
// It needs root (to drop to other UIDs with setpriv); without root it is skipped, except in CI
// (CI or TIERFLOW_REQUIRE_POD_HARNESS set), where it fails.
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EXT_PROC_SERVICE } from '../../src/extproc/protos.js';
import { ENVOY_CONTAINER, TIERFLOW_CONTAINER } from '../../src/k8s/inject.js';
import { injectObject, secretsByNamespace } from '../../src/k8s/inject-manifests.js';
import { injectorConfigFromValues, loadChartValues } from '../../src/k8s/injector-values.js';
import { FakeApiServer, waitFor } from '../k8s/fake-apiserver.js';
import { autoPolicy } from '../k8s/fixtures.js';
import { INVERTED, ROUTER, ROUTER_LABELS, TRANSLATION } from '../k8s/routers-fixture.js';
import type { MockServer } from '../mocks/faults.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';
import { KubeletPod } from './kubelet.js';
import {
  containerEnv,
  eventually,
  freePort,
  grpcProbe,
  harnessUnavailable,
  imageEntrypoint,
  rewriter,
  runAs,
  writeKubeconfig,
  type Running,
} from './pod-harness.js';

const unavailable = harnessUnavailable();
const required = Boolean(process.env.CI || process.env.TIERFLOW_REQUIRE_POD_HARNESS);
const PROVIDER_KEY = 'sk-pod-harness-secret-1';

const provider = (baseUrl: string) => ({
  type: 'openai',
  baseUrl,
  credentials: { secretRef: { name: 'openai', key: 'apiKey' } },
  models: [
    {
      name: 'gpt-4o-mini',
      tier: 'lightweight',
      pricing: { inputPerMTok: 0.15, outputPerMTok: 0.6 },
      contextWindow: 128000,
      maxOutputTokens: 16384,
    },
    {
      name: 'gpt-4o',
      tier: 'flagship',
      pricing: { inputPerMTok: 2.5, outputPerMTok: 10 },
      contextWindow: 128000,
      maxOutputTokens: 16384,
    },
  ],
});

const appPod = (namespace: string): V1Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'chat', namespace, annotations: { 'tierflow.dev/inject': 'true' } },
  spec: {
    securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001 },
    containers: [{ name: 'app', image: 'example.com/chat:1' }],
  },
});

interface StartedPod {
  kpod: KubeletPod;
  ports: Map<number, number>;
  tierflow: Running;
  envoy: Running;
  client: OpenAI;
  envoyUrl: string;
  stop(): Promise<void>;
}

let api: FakeApiServer;
let mock: MockServer;
const roots: string[] = [];

/** `tierflow inject` of the app pod, laid out and started like the kubelet would. */
async function startPod(namespace: string): Promise<StartedPod> {
  const { values, appVersion } = loadChartValues();
  const config = injectorConfigFromValues(values, appVersion);
  const objects = [
    {
      apiVersion: 'tierflow.dev/v1alpha1',
      kind: 'LLMProvider',
      metadata: { name: 'openai', namespace },
      spec: provider(mock.url),
    },
  ];
  const injected = injectObject(appPod(namespace), {
    config,
    namespace,
    secrets: secretsByNamespace(objects, namespace),
  });
  const pod = injected.object as V1Pod;
  const root = mkdtempSync(join(tmpdir(), 'tierflow-pod-'));
  roots.push(root);
  const kpod = new KubeletPod(pod, root, {
    namespace,
    podName: 'chat',
    secrets: { openai: { apiKey: PROVIDER_KEY } },
    configMaps: { 'kube-root-ca.crt': { 'ca.crt': 'not a real CA' } },
    token: api.token,
  });

  // Container ports -> free host ports (each pod has its own network namespace; this machine does not).
  const ports = new Map<number, number>();
  for (const c of kpod.containers())
    for (const p of c.ports ?? []) ports.set(p.containerPort, await freePort());

  // tierflow: the image's entrypoint with the webhook's args, as the container's user.
  const tf = kpod.container(TIERFLOW_CONTAINER);
  const rewrite = rewriter(kpod, TIERFLOW_CONTAINER, ports);
  // In-cluster config comes from the projected token; here a kubeconfig with that token stands in.
  const kubeconfig = join(root, 'kubeconfig');
  writeKubeconfig(kubeconfig, api.url, api.token, namespace);
  const tierflow = runAs(
    kpod.identity(TIERFLOW_CONTAINER),
    [...imageEntrypoint(), ...(tf.args ?? []).map(rewrite)],
    {
      ...containerEnv(kpod, tf, rewrite),
      KUBECONFIG: kubeconfig,
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      NODE_ENV: 'production',
    },
  );
  await tierflow.line((l) => l.includes('tierflow sidecar listening'));

  // Envoy: the bootstrap the webhook passed with --config-yaml, the socket where it says, as Envoy's user.
  const ev = kpod.container(ENVOY_CONTAINER);
  const bootstrapText = ev.args![ev.args!.indexOf('--config-yaml') + 1]!;
  const bootstrap = parse(bootstrapText);
  const socketInEnvoy: string = bootstrap.static_resources.clusters.find(
    (c: { name: string }) => c.name === 'tierflow_ext_proc',
  ).load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path;
  const bootstrapFile = join(root, 'envoy-bootstrap.yaml');
  writeFileSync(bootstrapFile, bootstrapText, { mode: 0o644 });
  const envoy = runAs(
    kpod.identity(ENVOY_CONTAINER),
    [
      process.execPath,
      // The Envoy harness uses TypeScript parameter properties: more than type stripping.
      '--experimental-transform-types',
      '--no-warnings',
      '--import',
      './scripts/run-from-source.ts',
      'test/pod/envoy-client.ts',
      bootstrapFile,
      kpod.hostPath(ENVOY_CONTAINER, socketInEnvoy),
    ],
    { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  );
  const envoyUrl = (JSON.parse(await envoy.line((l) => l.startsWith('{"url"'))) as { url: string }).url;
  const client = new OpenAI({ baseURL: `${envoyUrl}/v1`, apiKey: 'unused', maxRetries: 0 });
  return {
    kpod,
    ports,
    tierflow,
    envoy,
    client,
    envoyUrl,
    stop: async () => {
      await envoy.stop();
      await tierflow.stop();
    },
  };
}

if (unavailable && required) {
  describe('pod harness', () => {
    it('can run here (required in CI)', () => {
      throw new Error(`the pod harness cannot run: ${unavailable}`);
    });
  });
}

describe.skipIf(Boolean(unavailable))(
  `the injected pod as Kubernetes runs it${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    let pod: StartedPod;

    beforeAll(async () => {
      mock = await startOpenAIMock({ apiKey: PROVIDER_KEY });
      api = await new FakeApiServer().start();
      api.create('llmproviders', 'team-a', 'openai', provider(mock.url));
      api.create('routingpolicies', 'team-a', 'default', autoPolicy());
      pod = await startPod('team-a');
      // Generous: on a loaded machine a Node process can take tens of seconds to start.
    }, 240_000);

    afterAll(async () => {
      await pod?.stop();
      await api?.close();
      await mock?.close();
      for (const r of roots) rmSync(r, { recursive: true, force: true });
    });

    it('runs each sidecar as its own user, with a shared group, as the pod spec says', () => {
      const tf = pod.kpod.identity(TIERFLOW_CONTAINER);
      const envoy = pod.kpod.identity(ENVOY_CONTAINER);
      expect(tf.uid).not.toBe(envoy.uid);
      expect(tf.uid).not.toBe(0);
      expect(envoy.uid).not.toBe(0);
      expect(tf.gid).toBe(envoy.gid);
      // the kubelet's layout: a root-owned Secret file with the volume's defaultMode
      const secretVolume = pod.kpod.pod.spec!.volumes!.find((v) => v.secret?.secretName === 'openai')!;
      const file = statSync(join(pod.kpod.volumeDir(secretVolume.name), 'apiKey'));
      expect(file.uid).toBe(0);
      expect(file.mode & 0o777).toBe(secretVolume.secret!.defaultMode);
    });

    it("the tierflow process's socket lets Envoy's group in and nobody else", () => {
      const tf = pod.kpod.identity(TIERFLOW_CONTAINER);
      const st = statSync(pod.kpod.hostPath(TIERFLOW_CONTAINER, '/var/run/tierflow/sock/extproc.sock'));
      expect(st.isSocket()).toBe(true);
      expect(st.uid).toBe(tf.uid);
      expect(st.gid).toBe(tf.gid);
      expect(st.mode & 0o777).toBe(0o660);
    });

    it('passes the startup and readiness probes the webhook declared', async () => {
      const tf = pod.kpod.container(TIERFLOW_CONTAINER);
      const port = pod.ports.get(tf.startupProbe!.grpc!.port)!;
      expect(await grpcProbe(port, tf.startupProbe!.grpc!.service ?? '')).toBe('SERVING');
      await eventually(
        async () => (await grpcProbe(port, tf.readinessProbe!.grpc!.service ?? '')) === 'SERVING',
        60_000,
        'readiness',
      );
    });

    it("Envoy, as Envoy's user, reaches TierFlow over the socket (GET /v1/models is answered from the config)", async () => {
      const res = await fetch(`${pod.envoyUrl}/v1/models`);
      const body = await res.text();
      expect(res.status, `${body}\n--- envoy:\n${pod.envoy.output()}`).toBe(200);
      expect(JSON.parse(body).data.map((m: { id: string }) => m.id)).toContain('auto');
    });

    it('a chat completion goes through with the provider key the tierflow user read from the mounted Secret', async () => {
      let data;
      try {
        data = await pod.client.chat.completions.create({
          model: 'auto',
          messages: [{ role: 'user', content: 'Say hi' }],
        });
      } catch (err) {
        throw new Error(
          `${(err as Error).message}\n--- tierflow log:\n${pod.tierflow.output().slice(-3000)}`,
          { cause: err },
        );
      }
      expect(data.choices[0]!.message.content).toBe('echo: Say hi');
      expect(mock.lastRequest!.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
    });

    it('scores with the router of a ConfigMap (classifier.configMapRef), and applies a new version without a restart', async () => {
      // The shipped model sends the translation to the lightweight tier; the fitted router to the flagship.
      api.putConfigMap('team-a', 'my-router', { labels: ROUTER_LABELS, data: { 'router.json': ROUTER } });
      api.create('routingpolicies', 'team-a', 'fitted', {
        virtualModels: ['smart'],
        tiers: [
          { name: 'lightweight', maxScore: 0.5, models: ['openai/gpt-4o-mini'] },
          { name: 'flagship', models: ['openai/gpt-4o'] },
        ],
        classifier: { configMapRef: { name: 'my-router' } },
      });
      const modelFor = async (model: string) => {
        await pod.client.chat.completions.create({
          model,
          messages: [{ role: 'user', content: TRANSLATION }],
        });
        return mock.lastRequest!.body.model as string;
      };
      await eventually(
        async () => (await modelFor('smart').catch(() => '')) === 'gpt-4o',
        30_000,
        'the fitted router',
      );
      expect(await modelFor('auto')).toBe('gpt-4o-mini');
      api.putConfigMap('team-a', 'my-router', { labels: ROUTER_LABELS, data: { 'router.json': INVERTED } });
      await eventually(
        async () => (await modelFor('smart')) === 'gpt-4o-mini',
        30_000,
        'the new router version',
      );
    }, 120_000);

    it('serves a policy whose router ConfigMap is missing with the shipped model, then its router once it appears', async () => {
      api.create('routingpolicies', 'team-a', 'early', {
        virtualModels: ['early'],
        tiers: [
          { name: 'lightweight', maxScore: 0.5, models: ['openai/gpt-4o-mini'] },
          { name: 'flagship', models: ['openai/gpt-4o'] },
        ],
        classifier: { configMapRef: { name: 'early-router' } },
      });
      const modelFor = async () => {
        await pod.client.chat.completions.create({
          model: 'early',
          messages: [{ role: 'user', content: TRANSLATION }],
        });
        return mock.lastRequest!.body.model as string;
      };
      // Routed with the shipped model (the translation goes to the lightweight tier), and logged.
      await eventually(
        async () => (await modelFor().catch(() => '')) === 'gpt-4o-mini',
        30_000,
        'the policy served with the shipped model',
      );
      expect(pod.tierflow.output()).toMatch(/serving the model shipped with TierFlow/);
      api.putConfigMap('team-a', 'early-router', { labels: ROUTER_LABELS, data: { 'router.json': ROUTER } });
      await eventually(async () => (await modelFor()) === 'gpt-4o', 30_000, 'the fitted router');
    }, 120_000);

    it('starts without a configuration when the namespace cannot be read, says why, and serves once it can', async () => {
      // team-b is not in sidecar.namespaces: no RoleBinding, so the API server answers 403.
      api.failNext(1_000_000, 403, (r) => r.path.includes('/namespaces/team-b/'));
      const b = await startPod('team-b');
      try {
        const tf = b.kpod.container(TIERFLOW_CONTAINER);
        const port = b.ports.get(tf.startupProbe!.grpc!.port)!;
        // The pod starts (startup and liveness pass: the app is not blocked) but is not ready.
        expect(await grpcProbe(port, tf.startupProbe!.grpc!.service ?? '')).toBe('SERVING');
        expect(await grpcProbe(port, tf.readinessProbe!.grpc!.service ?? '')).toBe('NOT_SERVING');
        // The app gets a fast OpenAI-style error that says what to do.
        const res = await fetch(`${b.envoyUrl}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }),
        });
        expect(res.status).toBe(503);
        const err = (await res.json()) as { error: { code: string; message: string; type: string } };
        expect(err.error.code).toBe('tierflow_not_configured');
        expect(err.error.message).toMatch(/HTTP 403.*team-b.*sidecar\.namespaces/);
        await waitFor(() => b.tierflow.output().includes('no configuration yet'), 30_000);
        // The RoleBinding appears (and the objects): the sidecar picks them up and serves.
        api.clearFailures();
        api.create('llmproviders', 'team-b', 'openai', provider(mock.url));
        api.create('routingpolicies', 'team-b', 'default', autoPolicy());
        await eventually(
          async () => (await grpcProbe(port, EXT_PROC_SERVICE)) === 'SERVING',
          90_000,
          'readiness',
        );
        const ok = await b.client.chat.completions.create({
          model: 'auto',
          messages: [{ role: 'user', content: 'Say hi' }],
        });
        expect(ok.choices[0]!.message.content).toBe('echo: Say hi');
      } finally {
        await b.stop();
      }
    }, 300_000);
  },
);
