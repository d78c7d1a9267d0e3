// The sidecar's Kubernetes config source, driven by @kubernetes/client-node's informers against a
// real HTTP fake API server: list, watch with resourceVersion, bookmarks, 410 Gone, dropped
// connections, API errors, invalid objects, secret rotation.
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CompiledConfig } from '../../src/core/config/compiled.js';
import { KubernetesConfigSource } from '../../src/k8s/config-source.js';
import { silentLogger } from '../../src/k8s/log.js';
import type { NamespaceBuild } from '../../src/k8s/namespace-config.js';
import { FakeApiServer, waitFor } from './fake-apiserver.js';
import { autoPolicy, openaiProvider, secretsDir, virtualKey } from './fixtures.js';

const NS = 'team-a';

describe('Kubernetes config source (informers)', () => {
  let server: FakeApiServer;
  let secrets: ReturnType<typeof secretsDir>;
  let source: KubernetesConfigSource | undefined;
  let configs: CompiledConfig[];
  let builds: { build: NamespaceBuild; applied: boolean }[];

  const startSource = async (
    extra: Partial<ConstructorParameters<typeof KubernetesConfigSource>[0]> = {},
  ) => {
    source = new KubernetesConfigSource({
      namespace: NS,
      kubeConfig: server.kubeConfig(NS),
      secretsDir: secrets.dir,
      debounceMs: 20,
      secretsPollMs: 50,
      backoff: { initialMs: 20, maxMs: 200 },
      log: silentLogger,
      onConfig: (c) => configs.push(c),
      onBuild: (build, applied) => builds.push({ build, applied }),
      ...extra,
    });
    return source.start();
  };

  beforeEach(async () => {
    server = await new FakeApiServer().start();
    secrets = secretsDir();
    configs = [];
    builds = [];
    server.create('llmproviders', NS, 'openai', openaiProvider());
    server.create('routingpolicies', NS, 'default', autoPolicy());
    server.create('virtualkeys', NS, 'app', virtualKey());
    // objects of another namespace must not leak in
    server.create('llmproviders', 'team-b', 'other', openaiProvider(['x-small', 'x-large']));
  });

  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await server.close();
    secrets.cleanup();
  });

  it('lists, then watches from the list resourceVersion with bookmarks, and compiles the namespace', async () => {
    const listRv = server.resourceVersion;
    const config = await startSource();
    expect([...config.providers.keys()]).toEqual(['openai']);
    expect([...config.virtualModels.keys()]).toEqual(['auto']);
    expect(config.virtualKeys.size).toBe(1);
    expect(config.providers.get('openai')!.credentials.apiKey!.reveal()).toBe('sk-test-1');
    expect(configs).toHaveLength(1);

    // three TierFlow kinds and the router ConfigMaps
    await waitFor(() => server.watchRequests().length >= 4, 5000, 'four watches');
    for (const plural of ['llmproviders', 'routingpolicies', 'virtualkeys']) {
      const lists = server.listRequests(plural);
      expect(lists).toHaveLength(1);
      expect(lists[0]!.path).toBe(`/apis/tierflow.dev/v1alpha1/namespaces/${NS}/${plural}`);
      const [watch] = server.watchRequests(plural);
      expect(watch!.query.resourceVersion).toBe(listRv);
      expect(watch!.query.allowWatchBookmarks).toBe('true');
      expect(Number(watch!.query.timeoutSeconds)).toBeGreaterThan(0);
      expect(watch!.authorization).toBe(`Bearer ${server.token}`);
    }
    // Only the namespace's ConfigMaps labelled as routers, never all of them.
    const [cmList] = server.listRequests('configmaps');
    expect(cmList!.path).toBe(`/api/v1/namespaces/${NS}/configmaps`);
    expect(cmList!.query.labelSelector).toBe('tierflow.dev/router');
    const [cmWatch] = server.watchRequests('configmaps');
    expect(cmWatch!.query.labelSelector).toBe('tierflow.dev/router');
    expect(cmWatch!.query.resourceVersion).toBe(listRv);
  });

  it('applies a change from the watch as one new config, without relisting', async () => {
    await startSource();
    await waitFor(() => server.activeWatches >= 4, 5000, 'watches');
    const t0 = performance.now();
    server.update('llmproviders', NS, 'openai', openaiProvider(['gpt-4o-mini', 'gpt-4o', 'gpt-4.1']));
    const next = await waitFor(() => configs.find((c) => c.models.has('openai/gpt-4.1')), 5000, 'new model');
    const latency = performance.now() - t0;
    expect(next.providers.get('openai')!.models.map((m) => m.name)).toEqual([
      'gpt-4o-mini',
      'gpt-4o',
      'gpt-4.1',
    ]);
    expect(source!.current).toBe(next);
    expect(server.listRequests('llmproviders')).toHaveLength(1);
    // Informational (the 1 s goal is a benchmark matter): the debounce is 20 ms here.
    console.log(`watch event -> new config: ${latency.toFixed(1)} ms`);
  });

  it('never replaces the last good config with an invalid object, and reports it', async () => {
    const registry = new Registry();
    await startSource({ registry });
    await waitFor(() => server.activeWatches >= 4, 5000, 'watches');
    const good = source!.current!;

    // A dangling reference passes the CRD schema but does not compile.
    server.update('routingpolicies', NS, 'default', autoPolicy(['openai/gpt-4o-mini', 'missing/model']));
    const bad = await waitFor(
      () => builds.find((b) => b.build.outcomes.some((o) => o.key === 'policies' && o.generation === 2)),
      5000,
      'build',
    );
    expect(bad.applied).toBe(false);
    const outcome = bad.build.outcomes.find((o) => o.key === 'policies')!;
    expect(outcome.state).toBe('lastGood');
    expect(outcome.servedGeneration).toBe(1);
    expect(outcome.refs).toEqual([
      expect.objectContaining({ path: '/tiers/1/models/0', reason: 'ProviderNotFound' }),
    ]);
    expect(source!.current).toBe(good);
    expect(source!.current!.policies.get('default')!.tiers[1]!.candidates[0]!.id).toBe('openai/gpt-4o');
    const metrics = await registry.metrics();
    expect(metrics).toContain('tierflow_k8s_config_builds_total{result="applied"} 1');
    expect(metrics).toMatch(/tierflow_k8s_config_builds_total\{result="unchanged"\} [1-9]/);
    expect(metrics).toContain('tierflow_k8s_config_objects{kind="policies",state="lastGood"} 1');

    // An object that the schema rejects (if it got past the API server) is treated the same way.
    server.update('routingpolicies', NS, 'default', { virtualModels: ['auto'], tiers: [] });
    await waitFor(
      () => builds.find((b) => b.build.outcomes.some((o) => o.key === 'policies' && o.generation === 3)),
      5000,
      'build 3',
    );
    expect(source!.current).toBe(good);

    // Other objects keep flowing while one is broken: a new provider model is served.
    server.update('llmproviders', NS, 'openai', openaiProvider(['gpt-4o-mini', 'gpt-4o', 'o3']));
    const next = await waitFor(() => configs.find((c) => c.models.has('openai/o3')), 5000, 'provider change');
    expect(next.policies.get('default')!.tiers.map((t) => t.candidates.map((m) => m.id))).toEqual([
      ['openai/gpt-4o-mini'],
      ['openai/gpt-4o'],
    ]);

    // The fix is applied.
    server.update('routingpolicies', NS, 'default', autoPolicy(['openai/gpt-4o-mini', 'openai/o3']));
    const fixed = await waitFor(
      () => configs.find((c) => c.policies.get('default')?.tiers[1]?.candidates[0]?.id === 'openai/o3'),
      5000,
      'fix',
    );
    expect(fixed).toBe(source!.current);
  });

  it('moves its resourceVersion on bookmarks and resumes a dropped watch from it without relisting', async () => {
    await startSource();
    await waitFor(() => server.activeWatches >= 4, 5000, 'watches');
    server.bookmark();
    const bookmarkRv = server.resourceVersion;
    await waitFor(
      () => source!.informers.every((i) => i.resourceVersion === bookmarkRv),
      5000,
      'bookmark rv',
    );
    const buildsBefore = builds.length;

    const watchesBefore = server.watchRequests().length;
    server.dropWatches('end');
    await waitFor(() => server.watchRequests().length >= watchesBefore + 4, 5000, 'rewatch');
    for (const r of server.watchRequests().slice(watchesBefore))
      expect(r.query.resourceVersion).toBe(bookmarkRv);
    expect(server.listRequests()).toHaveLength(4);
    expect(builds.length).toBe(buildsBefore); // a bookmark is not a change

    // Events after the reconnect still arrive.
    server.create('routingpolicies', NS, 'second', autoPolicy(undefined, ['smart']));
    await waitFor(() => configs.find((c) => c.virtualModels.has('smart')), 5000, 'new policy');
  });

  it.each([
    ['an ERROR event with code 410 after an abrupt disconnect', 'event', 'destroy'],
    ['an HTTP 410 status after a clean close', 'status', 'end'],
  ] as const)('relists on 410 Gone: %s', async (_label, goneMode, drop) => {
    await startSource();
    await waitFor(() => server.activeWatches >= 4, 5000, 'watches');
    server.goneMode = goneMode;
    // While the watches are down: changes, then the history is compacted away.
    server.dropWatches(drop);
    server.delete('virtualkeys', NS, 'app');
    server.create('routingpolicies', NS, 'second', autoPolicy(undefined, ['smart']));
    server.compact();
    const next = await waitFor(
      () => configs.find((c) => c.virtualModels.has('smart') && c.virtualKeys.size === 0),
      5000,
      'relisted config',
    );
    expect(next.policies.size).toBe(2);
    expect(server.listRequests('virtualkeys').length).toBeGreaterThanOrEqual(2);
    expect(server.listRequests('routingpolicies').length).toBeGreaterThanOrEqual(2);
    await waitFor(() => server.activeWatches >= 4, 5000, 'watching again');
  });

  it('restarts with backoff while the API server fails, then catches up', async () => {
    await startSource({ backoff: { initialMs: 50, maxMs: 2000 } });
    await waitFor(() => server.activeWatches >= 4, 5000, 'watches');
    const failed: number[] = [];
    server.failNext(4, 503, (r) => {
      const isVk = r.path.endsWith('/virtualkeys');
      if (isVk) failed.push(performance.now());
      return isVk;
    });
    server.dropWatches('destroy');
    server.update('virtualkeys', NS, 'app', { ...virtualKey(), rpm: 120 });
    const next = await waitFor(
      () => configs.find((c) => [...c.virtualKeys.values()][0]?.rpm === 120),
      10_000,
      'recovered',
    );
    expect(next).toBe(source!.current);
    const vkInformer = source!.informers.find((i) => i.info.plural === 'virtualkeys')!;
    expect(vkInformer.restarts).toBeGreaterThanOrEqual(3);
    expect(failed.length).toBeGreaterThanOrEqual(4);
    // Backoff grows: the gap before the last failed attempt is longer than the first one.
    const gaps = failed.slice(1).map((t, i) => t - failed[i]!);
    expect(gaps[gaps.length - 1]!).toBeGreaterThan(gaps[0]!);
  });

  it('picks up a rotated Secret without any API change', async () => {
    const first = await startSource();
    expect(first.providers.get('openai')!.credentials.apiKey!.reveal()).toBe('sk-test-1');
    await new Promise((r) => setTimeout(r, 20)); // a new mtime
    secrets.write('openai', 'apiKey', 'sk-test-2\n');
    const next = await waitFor(
      () => configs.find((c) => c.providers.get('openai')!.credentials.apiKey!.reveal() === 'sk-test-2'),
      5000,
      'rotated key',
    );
    expect(next.revision).toBe(first.revision); // same objects, new credentials
    expect(JSON.stringify([...next.providers.values()].map((p) => p.credentials))).not.toContain('sk-test');
  });

  it('serves only the policies the pod asked for', async () => {
    server.create('routingpolicies', NS, 'second', autoPolicy(undefined, ['smart']));
    const config = await startSource({ policies: ['second'] });
    expect([...config.policies.keys()]).toEqual(['second']);
    expect([...config.virtualModels.keys()]).toEqual(['smart']);
  });

  it('reports a provider whose Secret is not mounted as disabled, without failing the namespace', async () => {
    secrets.cleanup();
    const config = await startSource();
    expect(config.providers.get('openai')!.enabled).toBe(false);
    const outcome = source!.lastBuild!.outcomes.find((o) => o.key === 'providers')!;
    expect(outcome.issues.map((i) => i.message).join(' ')).toMatch(/Secret 'openai' is not mounted/);
  });
});
