import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observe/metrics.js';
import { compile, sampleFile } from '../helpers/config.js';

describe('metrics', () => {
  it('reads the open ext_proc streams at scrape time', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    let open = 3;
    metrics.trackOpenStreams(() => open);
    expect(await metrics.registry.metrics()).toMatch(/^tierflow_extproc_open_streams 3$/m);
    open = 0;
    expect(await metrics.registry.metrics()).toMatch(/^tierflow_extproc_open_streams 0$/m);
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
});
