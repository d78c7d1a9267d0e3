// The controller's status writer against the fake API server: conditions with reasons,
// observedGeneration, merge patches on the status subresource, no rewrite when nothing changed,
// conflicts retried, and leader election (only the leader writes).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Controller } from '../../src/k8s/controller.js';
import { LeaderElector } from '../../src/k8s/leader.js';
import type { StatusPatcher } from '../../src/k8s/status.js';
import { FakeApiServer, waitFor } from './fake-apiserver.js';
import { autoPolicy, openaiProvider, virtualKey } from './fixtures.js';

const NS = 'team-a';
type Cond = {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration: number;
  lastTransitionTime: string;
};

function conditions(obj: Record<string, any> | undefined): Record<string, Cond> {
  return Object.fromEntries(((obj?.status?.conditions ?? []) as Cond[]).map((c) => [c.type, c]));
}

describe('controller status', () => {
  let server: FakeApiServer;
  let controllers: Controller[] = [];

  const start = async (opts: Partial<ConstructorParameters<typeof Controller>[0]> = {}) => {
    const c = new Controller({
      kubeConfig: server.kubeConfig('tierflow-system'),
      namespace: 'tierflow-system',
      identity: `controller-${controllers.length}`,
      leaderElection: false,
      debounceMs: 10,
      backoff: { initialMs: 20, maxMs: 200 },
      ...opts,
    });
    controllers.push(c);
    await c.start();
    return c;
  };
  const patches = () => server.requests.filter((r) => r.method === 'PATCH');

  beforeEach(async () => {
    server = await new FakeApiServer().start();
    server.create('llmproviders', NS, 'openai', openaiProvider());
    server.create('routingpolicies', NS, 'default', autoPolicy());
    server.create(
      'routingpolicies',
      NS,
      'broken',
      autoPolicy(['openai/gpt-4o-mini', 'anthropic/claude-sonnet-4'], ['smart']),
    );
    server.create('virtualkeys', NS, 'app', { ...virtualKey(), allowedModels: ['auto', 'nope'] });
  });

  afterEach(async () => {
    for (const c of controllers) await c.stop();
    controllers = [];
    await server.close();
  });

  it('writes Accepted, ResolvedRefs and Ready with reasons and observedGeneration', async () => {
    const c = await start();
    await waitFor(() => server.get('routingpolicies', NS, 'broken')?.status, 5000, 'status');
    await c.idle();

    const provider = conditions(server.get('llmproviders', NS, 'openai'));
    expect(provider.Accepted).toMatchObject({ status: 'True', reason: 'Accepted', observedGeneration: 1 });
    expect(provider.ResolvedRefs).toMatchObject({ status: 'True' });
    expect(provider.Ready).toMatchObject({ status: 'True', reason: 'Ready' });
    expect(server.get('llmproviders', NS, 'openai')!.status.observedGeneration).toBe(1);

    const broken = conditions(server.get('routingpolicies', NS, 'broken'));
    expect(broken.Accepted).toMatchObject({ status: 'True' });
    expect(broken.ResolvedRefs).toMatchObject({ status: 'False', reason: 'ProviderNotFound' });
    expect(broken.ResolvedRefs!.message).toContain(
      "spec.tiers[1].models[0]: LLMProvider 'anthropic' not found",
    );
    expect(broken.Ready).toMatchObject({ status: 'False', reason: 'NotInUse' });

    expect(conditions(server.get('routingpolicies', NS, 'default')).Ready).toMatchObject({ status: 'True' });
    const key = conditions(server.get('virtualkeys', NS, 'app'));
    expect(key.ResolvedRefs).toMatchObject({ status: 'False', reason: 'ModelNotFound' });
    expect(key.Ready).toMatchObject({ status: 'True' });

    for (const p of patches()) {
      expect(p.contentType).toBe('application/merge-patch+json');
      expect(p.path).toMatch(/\/status$/);
      expect(Object.keys(p.body as object).sort()).toEqual(['metadata', 'status']);
    }
    expect(c.builds.get(NS)!.config).toBeDefined();
  });

  it('does not rewrite an unchanged status, and keeps lastTransitionTime of unchanged conditions', async () => {
    const c = await start();
    await waitFor(() => server.get('routingpolicies', NS, 'broken')?.status, 5000, 'status');
    await c.idle();
    const before = patches().length;
    const objects = {
      providers: server.list('llmproviders', NS),
      policies: server.list('routingpolicies', NS),
      virtualKeys: server.list('virtualkeys', NS),
    };
    await c.reconcileNamespace(NS, objects);
    expect(patches().length).toBe(before);

    const old = conditions(server.get('routingpolicies', NS, 'broken'));
    await new Promise((r) => setTimeout(r, 1100)); // lastTransitionTime has second resolution
    server.create('llmproviders', NS, 'anthropic', {
      type: 'anthropic',
      credentials: { secretRef: { name: 'anthropic', key: 'apiKey' } },
      models: [
        {
          name: 'claude-sonnet-4',
          tier: 'flagship',
          pricing: { inputPerMTok: 3, outputPerMTok: 15 },
          contextWindow: 200000,
          maxOutputTokens: 64000,
        },
      ],
    });
    const fixed = await waitFor(
      () => {
        const cs = conditions(server.get('routingpolicies', NS, 'broken'));
        return cs.ResolvedRefs?.status === 'True' && cs;
      },
      5000,
      'refs resolved',
    );
    expect(fixed.Ready).toMatchObject({ status: 'True', reason: 'Ready' });
    expect(fixed.Accepted!.lastTransitionTime).toBe(old.Accepted!.lastTransitionTime);
    expect(fixed.ResolvedRefs!.lastTransitionTime).not.toBe(old.ResolvedRefs!.lastTransitionTime);
  });

  it('reports an invalid new generation while the last good one is served', async () => {
    const c = await start();
    await waitFor(
      () => conditions(server.get('routingpolicies', NS, 'default')).Ready?.status === 'True',
      5000,
      'ready',
    );
    server.update('routingpolicies', NS, 'default', {
      virtualModels: ['auto'],
      tiers: [{ name: 'lightweight', maxScore: 0.4 }, { name: 'mid', maxScore: 0.3 }, { name: 'flagship' }],
    });
    const cs = await waitFor(
      () => {
        const s = server.get('routingpolicies', NS, 'default')!.status;
        return s?.observedGeneration === 2 && conditions(server.get('routingpolicies', NS, 'default'));
      },
      5000,
      'generation 2 status',
    );
    expect(cs.Accepted).toMatchObject({ status: 'False', reason: 'Invalid', observedGeneration: 2 });
    expect(cs.Accepted!.message).toContain('spec.tiers[1].maxScore: maxScore must increase');
    expect(cs.Ready).toMatchObject({ status: 'False', reason: 'LastGoodInUse' });
    expect(cs.Ready!.message).toContain('generation 1');
    await c.idle();

    server.update('llmproviders', NS, 'openai', { ...openaiProvider(), type: 'no-such-type' });
    const pc = await waitFor(
      () => {
        const s = server.get('llmproviders', NS, 'openai')!.status;
        return s?.observedGeneration === 2 && conditions(server.get('llmproviders', NS, 'openai'));
      },
      5000,
      'provider status',
    );
    expect(pc.Accepted).toMatchObject({ status: 'False', reason: 'Invalid' });
    expect(pc.Accepted!.message).toMatch(/^spec\.type: must be one of openai, /);
  });

  it('retries a status write that hit a conflict', async () => {
    // Every first write conflicts: nothing changes on the server, so only the retry can fix it.
    server.failNext(4, 409, (r) => r.method === 'PATCH');
    const c = await start();
    await waitFor(
      () => ['openai'].every((n) => server.get('llmproviders', NS, n)?.status),
      5000,
      'status after conflict',
    );
    await waitFor(() => server.list('routingpolicies', NS).every((o) => o.status), 5000, 'all statuses');
    await c.idle();
    const text = await c.registry.metrics();
    // The injected conflicts (a stale cache may add more: they are retried the same way).
    const conflicts = Number(
      /tierflow_controller_status_writes_total\{result="conflict"\} (\d+)/.exec(text)?.[1],
    );
    expect(conflicts).toBeGreaterThanOrEqual(4);
    for (const plural of ['llmproviders', 'routingpolicies', 'virtualkeys']) {
      for (const o of server.list(plural, NS))
        expect(o.status?.observedGeneration, `${plural}/${o.metadata.name}`).toBe(1);
    }
  });

  it('elects one leader; only the leader writes status; a released lease moves at once', async () => {
    const writes = [0, 0];
    const counting = (i: number, real: StatusPatcher): StatusPatcher => ({
      patchStatus: async (...args) => {
        writes[i]!++;
        return real.patchStatus(...args);
      },
    });
    const { KubeStatusPatcher } = await import('../../src/k8s/status.js');
    const le = {
      leaseName: 'tierflow-controller',
      leaseDurationSeconds: 2,
      renewDeadlineMs: 1500,
      retryPeriodMs: 50,
    };
    const a = await start({
      identity: 'a',
      leaderElection: le,
      statusPatcher: counting(0, new KubeStatusPatcher(server.kubeConfig())),
    });
    await waitFor(() => a.isLeader, 5000, 'a leads');
    const b = await start({
      identity: 'b',
      leaderElection: le,
      statusPatcher: counting(1, new KubeStatusPatcher(server.kubeConfig())),
    });
    await waitFor(() => server.get('routingpolicies', NS, 'broken')?.status, 5000, 'status');
    await new Promise((r) => setTimeout(r, 300));
    expect(a.isLeader).toBe(true);
    expect(b.isLeader).toBe(false);
    expect(writes[0]).toBeGreaterThan(0);
    expect(writes[1]).toBe(0);
    const lease = server.get('leases', 'tierflow-system', 'tierflow-controller', 'coordination.k8s.io')!;
    expect(lease.spec.holderIdentity).toBe('a');
    expect(lease.spec.renewTime).toMatch(/\.\d{6}Z$/);

    await a.stop();
    controllers = controllers.filter((c) => c !== a);
    await waitFor(() => b.isLeader, 3000, 'b takes over');
    const after = server.get('leases', 'tierflow-system', 'tierflow-controller', 'coordination.k8s.io')!;
    expect(after.spec.holderIdentity).toBe('b');
    expect(after.spec.leaseTransitions).toBe(1);
    // The new leader writes what changed since.
    server.update('routingpolicies', NS, 'default', autoPolicy(undefined, ['auto', 'cheap']));
    await waitFor(
      () => server.get('routingpolicies', NS, 'default')!.status.observedGeneration === 2,
      5000,
      'b writes',
    );
    expect(writes[1]).toBeGreaterThan(0);
  });

  it('never lets two electors hold the lease at once', async () => {
    const kc = server.kubeConfig();
    const opts = { namespace: 'tierflow-system', name: 'race', leaseDurationSeconds: 5, retryPeriodMs: 10 };
    const electors = ['x', 'y', 'z'].map((identity) => new LeaderElector(kc, { ...opts, identity }));
    const results = await Promise.all(electors.map((e) => e.tryAcquireOrRenew()));
    expect(results.filter(Boolean)).toHaveLength(1);
    const again = await Promise.all(electors.map((e) => e.tryAcquireOrRenew()));
    expect(again.filter(Boolean)).toHaveLength(1);
    expect(again.indexOf(true)).toBe(results.indexOf(true));
  });
});
