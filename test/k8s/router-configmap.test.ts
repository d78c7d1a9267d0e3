// A RoutingPolicy scoring with a router fitted by `tierflow train`, from a ConfigMap
// (classifier.configMapRef), end to end against the fake API server: the sidecar's config source
// serves it, a ConfigMap change applies without a restart, and a missing, unlabelled or broken
// ConfigMap is named in the policy's status while the last good router keeps serving (or, when
// none loaded yet, the shipped model: the policy is never taken out of service).
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SHIPPED } from '../../src/core/classifier/index.js';
import type { CompiledConfig } from '../../src/core/config/compiled.js';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { KubernetesConfigSource } from '../../src/k8s/config-source.js';
import { Controller } from '../../src/k8s/controller.js';
import { silentLogger } from '../../src/k8s/log.js';
import { FakeApiServer, waitFor } from './fake-apiserver.js';
import { autoPolicy, openaiProvider, secretsDir } from './fixtures.js';
import { fitted, INVERTED, ROUTER, ROUTER_LABELS as LABELS, TRANSLATION } from './routers-fixture.js';

const NS = 'team-a';

const policy = (configMapRef: Record<string, string> = { name: 'my-router' }, virtualModels = ['auto']) => ({
  ...autoPolicy(undefined, virtualModels),
  tiers: [
    { name: 'lightweight', maxScore: 0.5, models: ['openai/gpt-4o-mini'] },
    { name: 'flagship', models: ['openai/gpt-4o'] },
  ],
  classifier: { configMapRef },
});

function plan(config: CompiledConfig | undefined, model = 'auto') {
  return new Router({ config: config!, health: new HealthRegistry() }).plan({
    body: JSON.stringify({ model, messages: [{ role: 'user', content: TRANSLATION }] }),
  });
}

type Cond = { type: string; status: string; reason: string; message: string };
function conditions(obj: Record<string, any> | undefined): Record<string, Cond> {
  return Object.fromEntries(((obj?.status?.conditions ?? []) as Cond[]).map((c) => [c.type, c]));
}

describe('RoutingPolicy classifier.configMapRef', () => {
  let server: FakeApiServer;
  let secrets: ReturnType<typeof secretsDir>;
  let source: KubernetesConfigSource | undefined;
  let controller: Controller | undefined;

  let warnings: Record<string, unknown>[];
  const capture = {
    ...silentLogger,
    warn: (msg: string, fields?: Record<string, unknown>) => warnings.push({ msg, ...fields }),
  };
  const startSidecar = async () => {
    warnings = [];
    source = new KubernetesConfigSource({
      namespace: NS,
      kubeConfig: server.kubeConfig(NS),
      secretsDir: secrets.dir,
      debounceMs: 20,
      secretsPollMs: 50,
      backoff: { initialMs: 20, maxMs: 200 },
      log: capture,
      onConfig: () => {},
    });
    await source.startWatching();
    return source;
  };
  const startController = async () => {
    controller = new Controller({
      kubeConfig: server.kubeConfig('tierflow-system'),
      namespace: 'tierflow-system',
      identity: 'controller-0',
      leaderElection: false,
      debounceMs: 10,
      backoff: { initialMs: 20, maxMs: 200 },
    });
    await controller.start();
    return controller;
  };
  /** Waits until the policy's status shows `reason` on `type`. */
  const statusOf = (name: string, type: string, reason: string, message?: RegExp) =>
    waitFor(
      () => {
        const cs = conditions(server.get('routingpolicies', NS, name));
        return cs[type]?.reason === reason && (!message || message.test(cs[type].message)) && cs;
      },
      5000,
      `${name} ${type}=${reason}`,
    );

  let shippedScore: number;
  beforeAll(() => {
    shippedScore = SHIPPED.classify({
      model: 'auto',
      messages: [{ role: 'user', content: TRANSLATION }],
    }).score;
  });

  beforeEach(async () => {
    server = await new FakeApiServer().start();
    secrets = secretsDir();
    server.create('llmproviders', NS, 'openai', openaiProvider());
    server.create('routingpolicies', NS, 'default', policy());
  });

  afterEach(async () => {
    await source?.stop();
    await controller?.stop();
    source = undefined;
    controller = undefined;
    await server.close();
    secrets.cleanup();
  });

  it('scores with the fitted router; a ConfigMap change applies without a restart', async () => {
    expect(shippedScore).toBeLessThan(0.5);
    const map = server.putConfigMap(NS, 'my-router', { labels: LABELS, data: { 'router.json': ROUTER } });
    const s = await startSidecar();
    await startController();
    const first = await waitFor(() => s.current, 5000, 'first config');
    const p = plan(first);
    expect(p.tier).toBe('flagship');
    expect(p.score).toBeGreaterThan(0.5);
    const ready = await statusOf('default', 'Ready', 'Ready');
    expect(ready.ResolvedRefs).toMatchObject({ status: 'True' });
    expect(ready.Ready!.message).toBe(
      `The sidecars of the namespace serve this generation, scoring with the router of ConfigMap 'my-router' key 'router.json', resourceVersion ${map.metadata.resourceVersion}.`,
    );

    // Retrained: the new router is served by the running sidecar.
    server.putConfigMap(NS, 'my-router', { labels: LABELS, data: { 'router.json': INVERTED } });
    const next = await waitFor(() => s.current !== first && s.current, 5000, 'config with the new router');
    expect(plan(next).tier).toBe('lightweight');
    expect(plan(next).score).toBeLessThan(0.5);
    // Status names the version in use.
    const rv = server.get('configmaps', NS, 'my-router', '')!.metadata.resourceVersion as string;
    await statusOf('default', 'Ready', 'Ready', new RegExp(`resourceVersion ${rv}\\.$`));
  });

  it('reads binaryData and a key other than router.json', async () => {
    server.create('routingpolicies', NS, 'binary', policy({ name: 'packed', key: 'v2.json' }, ['smart']));
    server.putConfigMap(NS, 'my-router', { labels: LABELS, data: { 'router.json': ROUTER } });
    server.putConfigMap(NS, 'packed', {
      labels: LABELS,
      binaryData: { 'v2.json': Buffer.from(INVERTED).toString('base64') },
    });
    const s = await startSidecar();
    const config = await waitFor(() => s.current, 5000, 'config');
    expect(plan(config, 'smart').tier).toBe('lightweight');
    expect(plan(config, 'auto').tier).toBe('flagship');
  });

  it('names a missing, unlabelled or broken ConfigMap in status, and keeps the last good router serving', async () => {
    server.putConfigMap(NS, 'my-router', { labels: LABELS, data: { 'router.json': INVERTED } });
    const s = await startSidecar();
    await startController();
    await waitFor(() => s.current, 5000, 'first config');
    await statusOf('default', 'Ready', 'Ready');
    const serving = () => plan(s.current);
    expect(serving().tier).toBe('lightweight');

    const broken: [string, () => void, string, RegExp][] = [
      [
        'bad JSON',
        () =>
          server.putConfigMap(NS, 'my-router', { labels: LABELS, data: { 'router.json': '{"format": ' } }),
        'RouterInvalid',
        /ConfigMap 'my-router' key 'router\.json' is not JSON/,
      ],
      [
        'a file of another release',
        () =>
          server.putConfigMap(NS, 'my-router', {
            labels: LABELS,
            data: {
              'router.json': JSON.stringify({ ...fitted, base: { ...fitted.base, version: '0.0.1' } }),
            },
          }),
        'RouterInvalid',
        /is not a router for this TierFlow release: classifier model: fitted on \S+ 0\.0\.1, .*refit it with tierflow train/,
      ],
      [
        'the key missing',
        () => server.putConfigMap(NS, 'my-router', { labels: LABELS, data: { 'other.json': ROUTER } }),
        'ConfigMapKeyNotFound',
        /ConfigMap 'my-router' has no key 'router\.json' \(it has: other\.json\)/,
      ],
      [
        'the label removed',
        () => server.putConfigMap(NS, 'my-router', { data: { 'router.json': ROUTER } }),
        'ConfigMapNotFound',
        /ConfigMap 'my-router' with label tierflow\.dev\/router not found in namespace 'team-a'.*kubectl -n team-a label configmap my-router tierflow\.dev\/router=true/,
      ],
      [
        'the ConfigMap deleted',
        () => server.delete('configmaps', NS, 'my-router', ''),
        'ConfigMapNotFound',
        /ConfigMap 'my-router' with label tierflow\.dev\/router not found/,
      ],
    ];
    for (const [what, breakIt, reason, message] of broken) {
      breakIt();
      const cs = await statusOf('default', 'ResolvedRefs', reason, message);
      expect(cs.ResolvedRefs!.status, what).toBe('False');
      expect(cs.ResolvedRefs!.message, what).toMatch(/^spec\.classifier\.configMapRef: /);
      expect(cs.Accepted, what).toMatchObject({ status: 'True' });
      expect(cs.Ready, what).toMatchObject({ status: 'False', reason: 'LastGoodRouterInUse' });
      expect(cs.Ready!.message, what).toMatch(
        /last router that loaded \(ConfigMap 'my-router' key 'router\.json', resourceVersion \d+\)/,
      );
      // The sidecar sees the same (after the label went, the deletion is no event to it) and
      // still serves the inverted router.
      const outcome = await waitFor(
        () => {
          const o = s.lastBuild?.outcomes.find((x) => x.name === 'default');
          return o?.refs[0]?.reason === reason && message.test(o.refs[0].message) && o;
        },
        5000,
        `${what}: sidecar build`,
      );
      expect(outcome.lastGoodRouter, what).toMatch(/^ConfigMap 'my-router'/);
      // ... and says so in its log.
      const logged = warnings.filter((w) => w.msg === 'object not served as written' && w.name === 'default');
      expect(String((logged.at(-1)?.refs as string[] | undefined)?.[0]), what).toMatch(message);
      expect(logged.at(-1)?.router, what).toMatch(/^serving the last router that loaded/);
      expect(serving().tier, what).toBe('lightweight');
    }

    // Fixed: created without the label (invisible to TierFlow), then labelled (a watch sees it
    // appear): the new router applies and status is clean again.
    server.putConfigMap(NS, 'my-router', { data: { 'router.json': ROUTER } });
    server.putConfigMap(NS, 'my-router', { labels: LABELS, data: { 'router.json': ROUTER } });
    await statusOf('default', 'Ready', 'Ready');
    await waitFor(() => serving().tier === 'flagship', 5000, 'fixed router served');
  });

  it('serves a new policy whose ConfigMap is missing with the shipped model, then its router once it appears', async () => {
    server.putConfigMap(NS, 'my-router', { labels: LABELS, data: { 'router.json': ROUTER } });
    server.create('routingpolicies', NS, 'early', policy({ name: 'not-yet' }, ['smart']));
    const s = await startSidecar();
    await startController();
    const config = await waitFor(() => s.current, 5000, 'config');
    // Both policies route: `smart` scores with the shipped model (the translation stays on the
    // lightweight tier), `auto` with its fitted router.
    expect(plan(config, 'auto').tier).toBe('flagship');
    const shipped = plan(config, 'smart');
    expect(shipped.tier).toBe('lightweight');
    expect(shipped.score).toBeCloseTo(shippedScore, 12);
    const cs = await statusOf('early', 'Ready', 'ShippedRouterInUse');
    expect(cs.Ready!.status).toBe('False');
    expect(cs.Ready!.message).toMatch(
      /until the ConfigMap holds a router this release can load: refit it with this release's `tierflow train`/,
    );
    expect(cs.ResolvedRefs).toMatchObject({ status: 'False', reason: 'ConfigMapNotFound' });
    expect(cs.ResolvedRefs!.message).toMatch(
      /ConfigMap 'not-yet' with label tierflow\.dev\/router not found/,
    );
    await statusOf('default', 'Ready', 'Ready');
    // The sidecar says so in its log.
    const logged = warnings.filter((w) => w.msg === 'object not served as written' && w.name === 'early');
    expect(logged.at(-1)?.router).toMatch(/^serving the model shipped with TierFlow/);
    expect(String((logged.at(-1)?.refs as string[] | undefined)?.[0])).toMatch(/ConfigMap 'not-yet'/);

    // The ConfigMap arrives: its router applies in the running sidecar, and status is clean.
    server.putConfigMap(NS, 'not-yet', { labels: LABELS, data: { 'router.json': ROUTER } });
    const later = await waitFor(
      () => s.current !== config && plan(s.current, 'smart').tier === 'flagship' && s.current,
      5000,
      'the fitted router of not-yet',
    );
    expect(plan(later, 'smart').score).toBeGreaterThan(0.5);
    await statusOf('early', 'Ready', 'Ready', /scoring with the router of ConfigMap 'not-yet'/);
  });

  it('a sidecar that starts after an upgrade, whose router is of the earlier release, serves the policy with the shipped model', async () => {
    const stale = JSON.stringify({ ...fitted, base: { ...fitted.base, version: '0.0.1' } });
    server.putConfigMap(NS, 'my-router', { labels: LABELS, data: { 'router.json': stale } });
    const s = await startSidecar();
    await startController();
    const config = await waitFor(() => s.current, 5000, 'config');
    expect(plan(config).tier).toBe('lightweight');
    expect(config.policies.get('default')!.classifier).toBeUndefined();
    const cs = await statusOf('default', 'Ready', 'ShippedRouterInUse');
    expect(cs.ResolvedRefs).toMatchObject({ status: 'False', reason: 'RouterInvalid' });
    expect(cs.ResolvedRefs!.message).toMatch(/fitted on \S+ 0\.0\.1, .*refit it with tierflow train/);
    // The controller's gauge agrees with the Ready condition: the policy is served, not ready.
    await controller!.idle();
    const text = await controller!.registry.metrics();
    expect(text).toMatch(/tierflow_controller_objects\{kind="policies",ready="false"\} 1\n/);
    expect(text).toMatch(/tierflow_controller_objects\{kind="policies",ready="true"\} 0\n/);
  });

  it('without RBAC on ConfigMaps, serves every policy (with the shipped model) and says why in status', async () => {
    server.failNext(1_000_000, 403, (r) => r.path.includes('/configmaps'));
    server.create('routingpolicies', NS, 'plain', autoPolicy(undefined, ['plain']));
    server.putConfigMap(NS, 'my-router', { labels: LABELS, data: { 'router.json': ROUTER } });
    const s = await startSidecar();
    await startController();
    const config = await waitFor(() => s.current, 5000, 'config without routers');
    expect(config.virtualModels.has('plain')).toBe(true);
    expect(plan(config).tier).toBe('lightweight'); // the shipped model
    const cs = await statusOf('default', 'ResolvedRefs', 'ConfigMapsForbidden');
    expect(cs.Ready).toMatchObject({ status: 'False', reason: 'ShippedRouterInUse' });
    expect(cs.ResolvedRefs!.message).toMatch(
      /the TierFlow controller may not list ConfigMaps \(HTTP 403\), so it cannot read the router: the TierFlow chart's RBAC grants it/,
    );
    await statusOf('plain', 'Ready', 'Ready');
    const outcome = s.lastBuild!.outcomes.find((o) => o.name === 'default')!;
    expect(outcome.refs[0]!.message).toMatch(
      /this pod's service account may not list ConfigMaps in namespace 'team-a' \(HTTP 403\)/,
    );

    // The RBAC is fixed: the informers list again (backoff) and the policy is served.
    server.clearFailures();
    const later = await waitFor(() => plan(s.current).tier === 'flagship' && s.current, 5000, 'auto');
    expect(plan(later).score).toBeGreaterThan(0.5);
    await statusOf('default', 'Ready', 'Ready');
  });

  it('refuses classifier.modelFile in a RoutingPolicy', async () => {
    server.update('routingpolicies', NS, 'default', {
      ...policy(),
      classifier: { modelFile: '/etc/router.json' },
    });
    await startController();
    const cs = await statusOf('default', 'Accepted', 'Invalid');
    expect(cs.Accepted!.message).toMatch(
      /spec\.classifier\.modelFile: classifier\.modelFile is for the standalone file config; a RoutingPolicy names its router with classifier\.configMapRef/,
    );
  });
});
