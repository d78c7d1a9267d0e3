// Objects of a namespace -> one compiled config, with the last-good rules.
import { describe, expect, it } from 'vitest';
import { loadClassifier } from '../../src/core/classifier/index.js';
import { Secret } from '../../src/core/secret.js';
import {
  buildNamespaceConfig,
  fieldPath,
  LastGoodStore,
  type NamespaceObjects,
  type TierflowObject,
} from '../../src/k8s/namespace-config.js';
import type { LoadedRouter, RouterProblem } from '../../src/k8s/routers.js';
import { conditionsFor } from '../../src/k8s/status.js';
import { autoPolicy, openaiProvider, virtualKey } from './fixtures.js';
import { fitted } from './routers-fixture.js';

const compile = {
  resolveCredentials: () => ({ apiKey: new Secret('k') }),
  resolveVirtualKey: () => new Secret('v'),
};
let uid = 0;
const obj = (name: string, spec: unknown, generation = 1, id?: string): TierflowObject => ({
  metadata: { name, namespace: 'ns', uid: id ?? `uid-${name}-${++uid}`, generation },
  spec,
});

describe('buildNamespaceConfig', () => {
  it('compiles the objects of a namespace like a config file', () => {
    const objects: NamespaceObjects = {
      providers: [obj('openai', openaiProvider())],
      policies: [obj('default', autoPolicy())],
      virtualKeys: [obj('app', virtualKey())],
    };
    const build = buildNamespaceConfig(objects, { compile, lastGood: new LastGoodStore() });
    expect(build.config).toBeDefined();
    expect(build.outcomes.map((o) => [o.key, o.name, o.state])).toEqual([
      ['providers', 'openai', 'current'],
      ['policies', 'default', 'current'],
      ['virtualKeys', 'app', 'current'],
    ]);
  });

  it('keeps the last good generation of an object that broke, and drops one that never was good', () => {
    const store = new LastGoodStore();
    const provider = obj('openai', openaiProvider(), 1, 'p');
    const policyV1 = obj('default', autoPolicy(), 1, 'pol');
    buildNamespaceConfig(
      { providers: [provider], policies: [policyV1], virtualKeys: [] },
      { compile, lastGood: store },
    );

    const policyV2 = obj('default', autoPolicy(['openai/gpt-4o-mini', 'openai/nope']), 2, 'pol');
    const fresh = obj('fresh', autoPolicy(['openai/missing', 'openai/gpt-4o'], ['fresh']), 1, 'fresh');
    const build = buildNamespaceConfig(
      { providers: [provider], policies: [policyV2, fresh], virtualKeys: [] },
      { compile, lastGood: store },
    );
    expect(build.config).toBeDefined();
    const byName = Object.fromEntries(build.outcomes.map((o) => [o.name, o]));
    expect(byName.default).toMatchObject({ state: 'lastGood', generation: 2, servedGeneration: 1 });
    expect(byName.fresh).toMatchObject({ state: 'excluded' });
    expect(build.config!.policies.get('default')!.tiers[1]!.candidates[0]!.id).toBe('openai/gpt-4o');
    expect(build.config!.policies.has('fresh')).toBe(false);

    const [accepted, refs, ready] = conditionsFor(byName.default!, build);
    expect(accepted).toMatchObject({ type: 'Accepted', status: 'True' });
    expect(refs).toMatchObject({ type: 'ResolvedRefs', status: 'False', reason: 'ModelNotFound' });
    expect(refs!.message).toBe("spec.tiers[1].models[0]: LLMProvider 'openai' has no model 'nope'");
    expect(ready).toMatchObject({ type: 'Ready', status: 'False', reason: 'LastGoodInUse' });
  });

  it('lets a virtual key name an embedding model of an LLMProvider (a policy tier may not)', () => {
    const provider = {
      ...openaiProvider(),
      embeddingModels: [{ name: 'text-embedding-3-small', pricing: { inputPerMTok: 0.02 } }],
    };
    const key = {
      ...virtualKey(),
      allowedModels: ['auto', 'text-embedding-3-small', 'openai/text-embedding-3-small'],
    };
    const build = buildNamespaceConfig(
      {
        providers: [obj('openai', provider)],
        policies: [
          obj('default', autoPolicy()),
          obj('bad', autoPolicy(['openai/text-embedding-3-small', 'openai/gpt-4o'], ['bad'])),
        ],
        virtualKeys: [obj('app', key)],
      },
      { compile, lastGood: new LastGoodStore() },
    );
    const byName = Object.fromEntries(build.outcomes.map((o) => [o.name, o]));
    expect(byName.app).toMatchObject({ state: 'current' });
    expect(conditionsFor(byName.app!, build)[1]).toMatchObject({ type: 'ResolvedRefs', status: 'True' });
    expect(byName.bad).toMatchObject({ state: 'excluded' });
    expect(build.config!.embeddingModelsByName.has('text-embedding-3-small')).toBe(true);
  });

  it('blames the object that collides, not the one that was there first', () => {
    const store = new LastGoodStore();
    const objects: NamespaceObjects = {
      providers: [obj('openai', openaiProvider())],
      policies: [obj('a-first', autoPolicy()), obj('b-second', autoPolicy())],
      virtualKeys: [],
    };
    const build = buildNamespaceConfig(objects, { compile, lastGood: store });
    const byName = Object.fromEntries(build.outcomes.map((o) => [o.name, o]));
    expect(byName['a-first']!.state).toBe('current');
    expect(byName['b-second']!.state).toBe('excluded');
    expect(byName['b-second']!.issues[0]).toMatchObject({ path: '/virtualModels/0', severity: 'error' });
    expect(conditionsFor(byName['b-second']!, build)[0]).toMatchObject({
      status: 'False',
      reason: 'Invalid',
    });
  });

  it('follows a deleted provider: dependants fall back, then drop out, and the rest is served', () => {
    const store = new LastGoodStore();
    const openai = obj('openai', openaiProvider(), 1, 'o');
    const other = obj('other', openaiProvider(['small', 'large']), 1, 'x');
    const policy = obj('default', autoPolicy(), 1, 'pol');
    const otherPolicy = obj('other', autoPolicy(['other/small', 'other/large'], ['other']), 1, 'op');
    buildNamespaceConfig(
      { providers: [openai, other], policies: [policy, otherPolicy], virtualKeys: [] },
      { compile, lastGood: store },
    );
    const build = buildNamespaceConfig(
      { providers: [other], policies: [policy, otherPolicy], virtualKeys: [] },
      { compile, lastGood: store },
    );
    expect(build.config).toBeDefined();
    expect(build.outcomes.find((o) => o.name === 'default' && o.key === 'policies')!.state).toBe('excluded');
    expect([...build.config!.virtualModels.keys()]).toEqual(['other']);
    expect(store.get('o')).toBeUndefined(); // forgotten with its object
  });

  it('turns issue paths into field paths', () => {
    expect(fieldPath('/tiers/1/maxScore')).toBe('spec.tiers[1].maxScore');
    expect(fieldPath('/name')).toBe('metadata.name');
    expect(fieldPath('/')).toBe('spec');
  });
});

describe('buildNamespaceConfig with router ConfigMaps', () => {
  // A new Classifier each time: the tests tell them apart by identity.
  const router = (name: string): LoadedRouter => ({
    classifier: loadClassifier(fitted),
    source: `ConfigMap '${name}' key 'router.json', resourceVersion 1`,
  });
  /** ConfigMaps by name: a router, or a problem. */
  const resolver =
    (maps: Record<string, LoadedRouter | RouterProblem>) =>
    (ref: { name: string }): LoadedRouter | RouterProblem =>
      maps[ref.name] ?? { reason: 'ConfigMapNotFound', message: `no ${ref.name}` };
  const withRouter = (name: string, extra: Record<string, unknown> = {}) => ({
    ...autoPolicy(),
    classifier: { configMapRef: { name } },
    ...extra,
  });
  const provider = obj('openai', openaiProvider(), 1, 'p');

  it('serves a new generation with the last good router when its ConfigMap does not load', () => {
    const store = new LastGoodStore();
    const a = router('a');
    const first = buildNamespaceConfig(
      { providers: [provider], policies: [obj('default', withRouter('a'), 1, 'pol')], virtualKeys: [] },
      { compile, lastGood: store, resolveRouter: resolver({ a }) },
    );
    expect(first.config!.policies.get('default')!.classifier).toBe(a.classifier);
    expect(first.outcomes[1]).toMatchObject({ state: 'current', router: a.source });
    expect(first.outcomes[1]!.lastGoodRouter).toBeUndefined();

    // Generation 2 names another ConfigMap (missing) and changes a threshold: the threshold is
    // served, with router a.
    const v2 = withRouter('b', {
      tiers: [{ ...autoPolicy().tiers[0], maxScore: 0.6 }, autoPolicy().tiers[1]],
    });
    const second = buildNamespaceConfig(
      { providers: [provider], policies: [obj('default', v2, 2, 'pol')], virtualKeys: [] },
      { compile, lastGood: store, resolveRouter: resolver({ a }) },
    );
    const served = second.config!.policies.get('default')!;
    expect(served.classifier).toBe(a.classifier);
    expect(served.tiers[0]!.maxScore).toBe(0.6);
    const outcome = second.outcomes[1]!;
    expect(outcome).toMatchObject({ state: 'current', lastGoodRouter: a.source });
    expect(outcome.refs).toEqual([
      { path: '/classifier/configMapRef', reason: 'ConfigMapNotFound', message: 'no b' },
    ]);
    const [accepted, resolved, ready] = conditionsFor(outcome, second);
    expect(accepted).toMatchObject({ status: 'True' });
    expect(resolved).toMatchObject({ status: 'False', reason: 'ConfigMapNotFound' });
    expect(ready).toMatchObject({ status: 'False', reason: 'LastGoodRouterInUse' });
    expect(second.routers).toBe(first.routers);

    // b appears: it is served and becomes the last good router.
    const b = router('b');
    const third = buildNamespaceConfig(
      { providers: [provider], policies: [obj('default', v2, 2, 'pol')], virtualKeys: [] },
      { compile, lastGood: store, resolveRouter: resolver({ b }) },
    );
    expect(third.config!.policies.get('default')!.classifier).toBe(b.classifier);
    expect(third.routers).not.toBe(first.routers);
    expect(conditionsFor(third.outcomes[1]!, third)[2]).toMatchObject({ status: 'True', reason: 'Ready' });
  });

  it('an invalid new generation falls back to the last good spec, whose router is read afresh', () => {
    const store = new LastGoodStore();
    buildNamespaceConfig(
      { providers: [provider], policies: [obj('default', withRouter('a'), 1, 'pol')], virtualKeys: [] },
      { compile, lastGood: store, resolveRouter: resolver({ a: router('a') }) },
    );
    const broken = withRouter('a', { tiers: [{ name: 'only', maxScore: 2 }] });
    const retrained = router('a');
    const build = buildNamespaceConfig(
      { providers: [provider], policies: [obj('default', broken, 2, 'pol')], virtualKeys: [] },
      { compile, lastGood: store, resolveRouter: resolver({ a: retrained }) },
    );
    expect(build.outcomes[1]!.state).toBe('lastGood');
    expect(build.config!.policies.get('default')!.classifier).toBe(retrained.classifier);
  });

  it('serves a policy whose router never loaded with the shipped model, until the router loads', () => {
    const store = new LastGoodStore();
    const objects = (
      generation: number,
      spec: Record<string, unknown> = { ...withRouter('x'), virtualModels: ['smart'] },
    ) => ({
      providers: [provider],
      policies: [obj('default', autoPolicy(), 1, 'plain'), obj('fitted', spec, generation, 'fit')],
      virtualKeys: [],
    });
    const build = buildNamespaceConfig(objects(1), {
      compile,
      lastGood: store,
      resolveRouter: resolver({ x: { reason: 'RouterInvalid', message: 'not JSON' } }),
    });
    // Still routed: `smart` selects the policy, which scores with the shipped model.
    expect([...build.config!.virtualModels.keys()].sort()).toEqual(['auto', 'smart']);
    const served = build.config!.policies.get('fitted')!;
    expect(served).toBeDefined();
    expect(served.classifier).toBeUndefined();
    const fitted = build.outcomes.find((o) => o.name === 'fitted')!;
    expect(fitted).toMatchObject({ state: 'current', shippedRouter: true });
    expect(fitted.lastGoodRouter).toBeUndefined();
    expect(fitted.router).toBeUndefined();
    const [accepted, resolved, ready] = conditionsFor(fitted, build);
    expect(accepted).toMatchObject({ status: 'True', reason: 'Accepted' });
    expect(resolved).toMatchObject({
      status: 'False',
      reason: 'RouterInvalid',
      message: 'spec.classifier.configMapRef: not JSON',
    });
    expect(ready).toMatchObject({ status: 'False', reason: 'ShippedRouterInUse' });
    expect(ready!.message).toMatch(/with the model shipped with TierFlow/);
    expect(ready!.message).toMatch(/until the ConfigMap holds a router this release can load: refit it/);
    expect(ready!.message).toMatch(/tierflow train/);
    expect(ready!.message).toMatch(/tierflow\.dev\/router/);
    expect(build.routers).toBe('');
    // The policy without a router is untouched.
    expect(
      conditionsFor(
        build.outcomes.find((o) => o.name === 'default')!,
        build,
      )[2],
    ).toMatchObject({
      reason: 'Ready',
    });

    // Generation 2 is invalid: generation 1 keeps serving, still with the shipped model.
    const invalid = buildNamespaceConfig(
      objects(2, { ...withRouter('x'), virtualModels: ['smart'], tiers: [{ name: 'only', maxScore: 2 }] }),
      { compile, lastGood: store, resolveRouter: resolver({}) },
    );
    const kept = invalid.outcomes.find((o) => o.name === 'fitted')!;
    expect(kept).toMatchObject({ state: 'lastGood', servedGeneration: 1, shippedRouter: true });
    expect(invalid.config!.policies.get('fitted')!.classifier).toBeUndefined();
    expect(conditionsFor(kept, invalid)[2]!.message).toMatch(
      /keep serving generation 1, with the model shipped with TierFlow/,
    );

    // The router loads: it is served (a new routers key, so the sidecar swaps the config in).
    const x = router('x');
    const loaded = buildNamespaceConfig(objects(1), {
      compile,
      lastGood: store,
      resolveRouter: resolver({ x }),
    });
    expect(loaded.config!.policies.get('fitted')!.classifier).toBe(x.classifier);
    expect(loaded.routers).toBe(`fitted=${x.source}`);
    const now = loaded.outcomes.find((o) => o.name === 'fitted')!;
    expect(now.shippedRouter).toBeUndefined();
    expect(conditionsFor(now, loaded)[2]).toMatchObject({ status: 'True', reason: 'Ready' });

    // ... and it is the last good router from then on: the shipped model does not come back.
    const broken = buildNamespaceConfig(objects(1), {
      compile,
      lastGood: store,
      resolveRouter: resolver({}),
    });
    expect(broken.config!.policies.get('fitted')!.classifier).toBe(x.classifier);
    expect(broken.outcomes.find((o) => o.name === 'fitted')).toMatchObject({ lastGoodRouter: x.source });
  });
});
