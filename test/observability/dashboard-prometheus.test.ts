// The Grafana dashboard against a real Prometheus (Debian package) scraping a real `tierflow
// serve` (with Redis) and a real `tierflow sidecar` (driven through the Envoy harness) after both
// served mixed traffic: easy and hard requests, streams, failovers, a 429, explicit models, a
// rejected request, a request every provider failed, config reloads. Every panel's PromQL (and
// every template variable and annotation) goes through Prometheus' HTTP API and must return at
// least one finite value; every alert rule must evaluate without error; every metric the
// dashboard and the rules name must exist.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { envoyBootstrap } from '../../src/extproc/envoy-config.js';
import { DASHBOARD_FILE, RULES_FILE } from '../../scripts/observability/files.ts';
import { EnvoyHarness, harnessOptionsFromBootstrap } from '../extproc/envoy-harness.js';
import { type CliProcess, startCli } from '../helpers/cli.js';
import { model } from '../helpers/config.js';
import { findPrometheusTool, PrometheusServer } from '../helpers/prometheus.js';
import { findRedisServer, RedisServer } from '../helpers/redis.js';
import { startAnthropicMock } from '../mocks/anthropic-mock.js';
import type { MockServer } from '../mocks/faults.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';

const ROOT = join(import.meta.dirname, '..', '..');
const prometheusBin = findPrometheusTool('prometheus');
const redisBin = findRedisServer();
const VIRTUAL_KEY = 'tf-dashboard-team-key-0123456789';
const EASY = 'Say hi';
const HARD =
  'Prove that there are infinitely many primes, then derive a closed form for the sum of the reciprocals of the first n squares and prove its limit rigorously using real analysis.';

/** What Grafana substitutes before a query reaches Prometheus ("All" for every variable). */
const GRAFANA_VARIABLES: Record<string, string> = {
  $__rate_interval: '30s',
  $__range: '5m',
  $job: '.+',
  $namespace: '.*',
  $policy: '.*',
};

function substitute(expr: string): string {
  return expr.replace(
    /\$__rate_interval|\$__range|\$job|\$namespace|\$policy/g,
    (v) => GRAFANA_VARIABLES[v]!,
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function configFile(alpha: string, beta: string, extraHeader?: string) {
  return {
    providers: [
      {
        name: 'alpha',
        type: 'openai',
        baseUrl: alpha,
        credentials: { apiKey: 'sk-alpha-secret' },
        ...(extraHeader ? { headers: { 'x-team': extraHeader } } : {}),
        models: [model('alpha-mini', 'lightweight', 0.15, 0.6), model('alpha-large', 'flagship', 2.5, 10)],
      },
      {
        name: 'beta',
        type: 'anthropic',
        baseUrl: beta,
        credentials: { apiKey: 'sk-beta-secret' },
        models: [model('beta-small', 'lightweight', 0.8, 4), model('beta-big', 'flagship', 3, 15)],
      },
    ],
    policies: [
      {
        name: 'default',
        virtualModels: ['auto'],
        tiers: [{ name: 'lightweight', maxScore: 0.5 }, { name: 'flagship' }],
        flagshipShare: 0.4,
      },
    ],
    virtualKeys: [
      { name: 'team', key: VIRTUAL_KEY, budget: { usd: 5, period: 'month' }, rpm: 1000, tpm: 2_000_000 },
    ],
  };
}

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string; refId: string }[];
}

describe.skipIf(!prometheusBin || !redisBin)('Grafana dashboard on a real Prometheus', () => {
  let alpha: MockServer;
  let beta: MockServer;
  let redis: RedisServer;
  let gateway: CliProcess;
  let sidecar: CliProcess;
  let harness: EnvoyHarness;
  let prometheus: PrometheusServer;
  let file: string;

  beforeAll(async () => {
    alpha = await startOpenAIMock({ apiKey: 'sk-alpha-secret' });
    beta = await startAnthropicMock({ apiKey: 'sk-beta-secret' });
    redis = await RedisServer.start(redisBin!);
    file = join(mkdtempSync(join(tmpdir(), 'tierflow-dash-')), 'tierflow.yaml');
    writeFileSync(file, stringify(configFile(alpha.url, beta.url)));
    [gateway, sidecar] = await Promise.all([
      startCli(
        ['serve', '--port', '0', '--config', file, '--redis', redis.url],
        'tierflow gateway listening',
        {
          TIERFLOW_REDIS_SYNC_MS: '100',
        },
      ),
      startCli(
        ['sidecar', '--config', file, '--socket', 'none', '--port', '0', '--metrics-port', '0'],
        'tierflow sidecar listening',
      ),
    ]);
    harness = new EnvoyHarness(
      harnessOptionsFromBootstrap(
        envoyBootstrap({ extProcSocket: '/unused' }),
        `127.0.0.1:${sidecar.ready.tcpPort as number}`,
      ),
    );
    const envoyUrl = await harness.listen();
    prometheus = await PrometheusServer.start(prometheusBin!, [
      { job: 'tierflow-gateway', address: new URL(gateway.ready.url as string).host },
      {
        job: 'tierflow-sidecar',
        address: `127.0.0.1:${sidecar.ready.metricsPort as number}`,
        labels: { namespace: 'demo' },
      },
    ]);
    // Both targets scraped once before any traffic, so the counters' first increases show in rates.
    for (let i = 0; ; i++) {
      const up = await prometheus.query('up == 1');
      if (up.length === 2) break;
      if (i > 100) throw new Error(`targets not up: ${JSON.stringify(await prometheus.targets())}`);
      await sleep(100);
    }

    const clients = [gateway.ready.url as string, `${envoyUrl}/v1`].map(
      (baseURL) => new OpenAI({ baseURL, apiKey: VIRTUAL_KEY, maxRetries: 0 }),
    );
    const ask = (sdk: OpenAI, content: string, extra: Partial<OpenAI.ChatCompletionCreateParams> = {}) =>
      sdk.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content }], ...extra } as any);
    const streamed = async (sdk: OpenAI, content: string) => {
      const s = await sdk.chat.completions.create({
        model: 'auto',
        stream: true,
        messages: [{ role: 'user', content }],
      });
      for await (const chunk of s) void chunk;
    };
    const wave = async () => {
      for (const sdk of clients) {
        alpha.setResponse({ usage: { prompt: 1200, completion: 300 } });
        beta.setResponse({ usage: { prompt: 1200, completion: 300 } });
        for (let i = 0; i < 3; i++) await ask(sdk, EASY);
        for (let i = 0; i < 2; i++) await ask(sdk, HARD);
        await streamed(sdk, EASY);
        await streamed(sdk, HARD);
        alpha.failNext({ kind: 'status', status: 500 }); // fails over to beta
        await ask(sdk, EASY);
        alpha.failNext({ kind: 'status', status: 429, retryAfter: 0 });
        await ask(sdk, EASY);
        await ask(sdk, EASY, { model: 'beta-small' }); // explicit
        await ask(sdk, EASY, { model: 'no-such-model' }).catch(() => undefined); // rejected
        alpha.failNext({ kind: 'status', status: 503, times: 5 });
        beta.failNext({ kind: 'status', status: 529, times: 5 });
        await ask(sdk, EASY).catch(() => undefined); // every candidate failed
        alpha.reset();
        beta.reset();
      }
    };
    await wave();
    // A rejected config change, then an applied one (both processes watch the file).
    writeFileSync(file, 'providers: [}\n');
    await sleep(1500);
    writeFileSync(file, stringify(configFile(alpha.url, beta.url, 'platform')));
    await sleep(1500);
    await wave();
    await sleep(2500); // a few scrapes after the last request
  }, 120_000);

  afterAll(async () => {
    await prometheus?.stop();
    await harness?.close();
    await Promise.all([gateway?.stop(), sidecar?.stop()]);
    await alpha?.close();
    await beta?.close();
    await redis?.stop();
  });

  const dashboard = JSON.parse(readFileSync(join(ROOT, DASHBOARD_FILE), 'utf8')) as {
    panels: Panel[];
    templating: { list: { name: string; type: string; definition?: string }[] };
    annotations: { list: { name: string; expr: string }[] };
  };
  const panels = dashboard.panels.filter((p) => p.type !== 'row');

  it('scrapes both processes and the Envoy harness saw no protocol violation', async () => {
    expect((await prometheus.targets()).map((t) => [t.job, t.health])).toEqual(
      expect.arrayContaining([
        ['tierflow-gateway', 'up'],
        ['tierflow-sidecar', 'up'],
      ]),
    );
    expect(harness.violations).toEqual([]);
    // both data planes served traffic, with the routing decisions the panels are about
    const served = await prometheus.query(
      'sum by (job, tier) (tierflow_requests_total{mode="auto",status_class="2xx"})',
    );
    const tiers = served.map((r) => `${r.metric.job}/${r.metric.tier}`).sort();
    expect(tiers).toEqual([
      'tierflow-gateway/flagship',
      'tierflow-gateway/lightweight',
      'tierflow-sidecar/flagship',
      'tierflow-sidecar/lightweight',
    ]);
  });

  it.each(panels.map((p) => [p.title, p] as const))('panel "%s" returns data', async (_title, panel) => {
    expect(panel.targets?.length).toBeGreaterThan(0);
    for (const target of panel.targets!) {
      const promql = substitute(target.expr);
      expect(promql).not.toMatch(/\$/); // every variable substituted
      const result = await prometheus.query(promql);
      const finite = result.filter((r) => Number.isFinite(Number(r.value[1])));
      expect(finite.length, `${target.refId}: ${promql}\n-> ${JSON.stringify(result)}`).toBeGreaterThan(0);
    }
  });

  it('the template variables and the annotation query return values', async () => {
    for (const v of dashboard.templating.list.filter((t) => t.type === 'query')) {
      const m = /^label_values\((.+), (\w+)\)$/.exec(v.definition!);
      expect(m, v.definition).not.toBeNull();
      const result = await prometheus.query(`count by (${m![2]}) (${substitute(m![1]!)})`);
      expect(result.map((r) => r.metric[m![2]!]).filter(Boolean), v.name).not.toEqual([]);
    }
    for (const a of dashboard.annotations.list) {
      const result = await prometheus.query(substitute(a.expr));
      expect(result.map((r) => r.metric.result).sort(), a.name).toEqual(['applied', 'rejected']);
    }
  });

  it('shows what the traffic did: savings, a flagship share, failovers by cause, reloads, Redis up', async () => {
    const value = async (q: string) => Number((await prometheus.query(q))[0]?.value[1]);
    expect(await value('sum(tierflow_saved_usd_total)')).toBeGreaterThan(0);
    const share = await value(
      substitute(dashboard.panels.find((p) => p.title === 'Flagship share vs target')!.targets![0]!.expr),
    );
    expect(share).toBeGreaterThan(0);
    expect(share).toBeLessThan(1);
    const reasons = await prometheus.query('sum by (reason) (tierflow_failovers_total)');
    expect(reasons.map((r) => r.metric.reason).sort()).toEqual(
      expect.arrayContaining(['http_429', 'http_5xx']),
    );
    expect(await value('sum(tierflow_config_reloads_total{job="tierflow-gateway",result="rejected"})')).toBe(
      1,
    );
    expect(await value('tierflow_shared_state_up')).toBe(1);
  });

  it('every alert rule evaluates on the live data, and every metric it or a panel names exists', async () => {
    const rules = parse(readFileSync(join(ROOT, RULES_FILE), 'utf8')) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    const exprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
    for (const expr of exprs) await prometheus.query(expr); // throws on an error
    const names = new Set(
      (await prometheus.query('group by (__name__) ({__name__=~"tierflow_.+"})')).map(
        (r) => r.metric.__name__,
      ),
    );
    const referenced = new Set(
      [...exprs, ...panels.flatMap((p) => p.targets!.map((t) => t.expr))].flatMap(
        (e) => e.match(/\btierflow_[a-z_]+/g) ?? [],
      ),
    );
    expect([...referenced].filter((n) => !names.has(n))).toEqual([]);
  });

  it('`tierflow report` summarizes one instance and all of Prometheus on one screen', async () => {
    const report = async (...args: string[]) =>
      (await promisify(execFile)(process.execPath, ['bin/tierflow.js', 'report', ...args])).stdout;
    const one = await report(gateway.ready.url as string);
    expect(one).toMatch(/metrics \(since the process started\)/);
    // per wave: 12 requests per data plane; 2 waves
    expect(one).toMatch(/^Requests +24 +\(auto 20, explicit 2, rejected 2\) +server errors 8\.3%$/m);
    expect(one).toMatch(/^Spend +\$[\d.]+ +flagship-equivalent \$[\d.]+ +saved \$[\d.]+ \(\d+%\)$/m);
    expect(one).toMatch(/^Flagship +default \d+% \(target 40%\)$/m);
    expect(one).toMatch(/^ +beta\/beta-small +\d+ +\d+% +\$[\d.]+ +\d+ ms$/m);
    expect(one).toMatch(/^Failovers +\d+ +\(.*http_429 2.*; most from alpha\/alpha-mini\)$/m);
    expect(one).toMatch(/^ +team +\$[\d.]+ +\$5\.00 +[\d.]+% +\d+\/1,000$/m);

    const all = JSON.parse(await report('--prometheus', prometheus.url, '--window', '5m', '--json'));
    // both instances: 10 auto requests each in the second wave (the first one creates most series,
    // which increase() does not count), extrapolated over the window
    expect(all.requests.auto).toBeGreaterThan(15);
    expect(all.savedUsd).toBeGreaterThan(0);
    expect(all.flagshipShare[0]).toMatchObject({ policy: 'default', target: 0.4 });
    expect(Object.keys(all.failovers.byReason)).toEqual(expect.arrayContaining(['http_5xx', 'http_429']));
    expect(all.keys[0]).toMatchObject({ key: 'team', budgetUsd: 5, rpm: 1000 });
  });
});
