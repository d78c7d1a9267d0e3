import { describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Metrics } from '../../src/observe/metrics.js';
import { parseExposition, quantileFromBuckets, render, summarize } from '../../src/observe/report.js';
import { compile, sampleFile } from '../helpers/config.js';

describe('tierflow report: parsing and summarizing metrics', () => {
  it('parses the exposition format, escaped label values included', () => {
    const samples = parseExposition(
      [
        '# HELP x_total A counter.',
        '# TYPE x_total counter',
        'x_total{key="a \\"quoted\\" \\\\ name",le="+Inf"} 3 1700000000000',
        'y 4.5e-3',
        '',
      ].join('\n'),
    );
    expect(samples).toEqual([
      { name: 'x_total', labels: { key: 'a "quoted" \\ name', le: '+Inf' }, value: 3 },
      { name: 'y', labels: {}, value: 0.0045 },
    ]);
  });

  it('interpolates a quantile inside its bucket, as histogram_quantile does', () => {
    const b = (le: string, value: number) => ({ name: 'h_bucket', labels: { le }, value });
    // 10 observations: 2 below 0.1, 8 between 0.1 and 0.5
    const buckets = [b('0.1', 2), b('0.5', 10), b('1', 10), b('+Inf', 10)];
    expect(quantileFromBuckets(0.5, buckets)).toBeCloseTo(0.1 + 0.4 * (3 / 8));
    expect(quantileFromBuckets(0.5, [b('+Inf', 0)])).toBeUndefined();
  });

  it('summarizes a real registry: shares, savings, failovers, breakers and keys', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const file = sampleFile();
    file.policies[0]!.flagshipShare = 0.25;
    const config = compile(file);
    const health = new HealthRegistry();
    metrics.trackRouting(() => ({ config, health }));
    metrics.trackVirtualKeys(() => [
      { name: 'team', spentUsd: 4, budgetUsd: 10, requests: 7, tokens: 0, rpm: 60 },
    ]);
    const mini = metrics.forModel(config.models.get('alpha/alpha-mini')!);
    const large = metrics.forModel(config.models.get('beta/beta-big')!);
    mini.request('auto', 'default', 'lightweight', '2xx').inc(6);
    large.request('auto', 'default', 'flagship', '2xx').inc(2);
    large.request('explicit', 'none', 'flagship', '2xx').inc(1);
    metrics.requests.inc({
      mode: 'rejected',
      policy: 'none',
      tier: 'none',
      provider: 'none',
      model: 'none',
      status_class: '4xx',
    });
    mini.cost.inc(0.5);
    large.cost.inc(1.5);
    metrics.flagshipCostUsd.inc({ policy: 'default' }, 8);
    metrics.savedUsd.inc({ policy: 'default' }, 6);
    mini.failover('http_429').inc(2);
    mini.ttft.observe(0.3);
    for (let i = 0; i < 5; i++) health.begin(config.models.get('alpha/alpha-large')!)!.fail('http_5xx');
    await new Promise((r) => setImmediate(r));

    const report = summarize(parseExposition(await metrics.registry.metrics()));
    expect(report.requests).toEqual({ total: 10, auto: 8, explicit: 1, rejected: 1, serverErrors: 0 });
    expect(report).toMatchObject({ spendUsd: 2, flagshipSpendUsd: 8, savedUsd: 6 });
    expect(report.flagshipShare).toEqual([{ policy: 'default', share: 0.25, target: 0.25, requests: 8 }]);
    expect(report.topModels.map((m) => [m.model, m.requests, m.spendUsd])).toEqual([
      ['alpha/alpha-mini', 6, 0.5],
      ['beta/beta-big', 3, 1.5],
    ]);
    expect(report.topModels[0]!.ttftP50Seconds).toBeGreaterThan(0.25);
    expect(report.topModels[0]!.ttftP50Seconds).toBeLessThanOrEqual(0.5);
    expect(report.failovers).toEqual({ total: 2, byReason: { http_429: 2 }, topModel: 'alpha/alpha-mini' });
    expect(report.openBreakers).toEqual([{ model: 'alpha/alpha-large', state: 'open' }]);
    expect(report.keys).toEqual([{ key: 'team', spendUsd: 4, budgetUsd: 10, minuteRequests: 7, rpm: 60 }]);

    const text = render(report, 'test');
    expect(text).toMatch(/^Spend +\$2\.00 +flagship-equivalent \$8\.00 +saved \$6\.00 \(75%\)$/m);
    expect(text).toMatch(/^Flagship +default 25% \(target 25%\)$/m);
    expect(text).toMatch(/^Breakers +alpha\/alpha-large open$/m);
    expect(text).toMatch(/^ +team +\$4\.00 +\$10\.00 +40% +7\/60$/m);
    expect(text.split('\n').length).toBeLessThan(25); // one screen
    health.close();
  });
});
