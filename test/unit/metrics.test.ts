import { describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Metrics } from '../../src/observe/metrics.js';
import { compile, sampleFile } from '../helpers/config.js';
import { ResponseStore } from '../../src/core/responses/store.js';

describe('metrics', () => {
  it('reads the open ext_proc streams at scrape time', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    let open = 3;
    metrics.trackOpenStreams(() => open);
    expect(await metrics.registry.metrics()).toMatch(/^tierflow_extproc_open_streams 3$/m);
    open = 0;
    expect(await metrics.registry.metrics()).toMatch(/^tierflow_extproc_open_streams 0$/m);
  });

  it('reads the Responses store size at scrape time', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const store = new ResponseStore();
    metrics.trackResponseStore(() => store);
    expect(await metrics.registry.metrics()).toMatch(/^tierflow_responses_stored 0$/m);
    store.set('resp_1', '', [{ role: 'user', content: 'hi' }], 0);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^tierflow_responses_stored 1$/m);
    expect(text).toMatch(new RegExp(`^tierflow_responses_stored_bytes ${store.bytes}$`, 'm'));
  });

  it('per-model children count under the same labels as a labelled call', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const model = compile(sampleFile()).models.get('alpha/alpha-mini')!;
    const m = metrics.forModel(model);
    expect(metrics.forModel(model)).toBe(m);
    m.attempt('http_5xx').inc();
    metrics.attempts.inc({ provider: 'alpha', model: 'alpha-mini', outcome: 'http_5xx' });
    m.request('auto', 'default', 'lightweight', '2xx').inc();
    const text = await metrics.registry.metrics();
    expect(text).toMatch(
      /tierflow_upstream_attempts_total\{provider="alpha",model="alpha-mini",outcome="http_5xx"\} 2/,
    );
    expect(text).toMatch(
      /tierflow_requests_total\{mode="auto",policy="default",tier="lightweight",provider="alpha",model="alpha-mini",status_class="2xx"\} 1/,
    );
  });

  it("reads every enabled model's breaker and each policy's flagship tier and share target at scrape time", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const file = sampleFile();
    const health = new HealthRegistry();
    let view = { config: compile(file), health };
    metrics.trackRouting(() => view);
    let text = await metrics.registry.metrics();
    // a breaker that never moved still has its series, so "every model of a tier open" is a query
    expect(text).toMatch(
      /^tierflow_circuit_breaker_state\{provider="beta",model="beta-big",tier="flagship"\} 0$/m,
    );
    expect(text.match(/^tierflow_circuit_breaker_state\{/gm)).toHaveLength(4);
    expect(text).toMatch(/^tierflow_policy_flagship_tier\{policy="default",tier="flagship"\} 1$/m);
    expect(text).not.toMatch(/^tierflow_policy_flagship_share_target\{/m);

    const alphaMini = view.config.models.get('alpha/alpha-mini')!;
    for (let i = 0; i < 5; i++) health.begin(alphaMini)!.fail('http_5xx');
    await new Promise((r) => setImmediate(r)); // the breaker counts settled attempts asynchronously
    file.policies[0]!.flagshipShare = 0.25;
    file.providers = file.providers.filter((p) => p.name === 'alpha');
    view = { config: compile(file), health };
    text = await metrics.registry.metrics();
    expect(text).toMatch(
      /^tierflow_circuit_breaker_state\{provider="alpha",model="alpha-mini",tier="lightweight"\} 2$/m,
    );
    expect(text).not.toMatch(/provider="beta"/); // removed models lose their series
    expect(text).toMatch(/^tierflow_policy_flagship_share_target\{policy="default"\} 0.25$/m);
    health.close();
  });

  it('observes the output token rate of successful attempts through the health events', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    let now = 0;
    const health = new HealthRegistry(() => now, metrics.healthEvents());
    const model = compile(sampleFile()).models.get('alpha/alpha-mini')!;
    const t = health.begin(model)!;
    now = 200;
    t.firstToken();
    now = 1200;
    t.succeed(50); // 50 tokens in the second after the first token
    const text = await metrics.registry.metrics();
    expect(text).toMatch(
      /^tierflow_output_tokens_per_second_bucket\{le="40",provider="alpha",model="alpha-mini"\} 0$/m,
    );
    expect(text).toMatch(
      /^tierflow_output_tokens_per_second_bucket\{le="60",provider="alpha",model="alpha-mini"\} 1$/m,
    );
    expect(text).toMatch(
      /^tierflow_output_tokens_per_second_sum\{provider="alpha",model="alpha-mini"\} 50$/m,
    );
    health.close();
  });
});
