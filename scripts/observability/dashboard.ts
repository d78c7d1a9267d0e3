// The Grafana dashboard shipped in observability/grafana/ and in the chart (a ConfigMap for
// Grafana's dashboard sidecar). Written as data so every panel's PromQL sits next to the question
// it answers; scripts/gen-observability.ts writes the JSON, and test/e2e/prometheus.test.ts
// evaluates every query against a real Prometheus scraping a real gateway and sidecar.

/** Instance filter shared by every query: the dashboard's job and namespace variables. */
const S = 'job=~"$job",namespace=~"$namespace"';
const P = `${S},policy=~"$policy"`;
const RATE = '$__rate_interval';
const RANGE = '$__range';

interface Target {
  expr: string;
  legend?: string;
  /** Grafana's heatmap format: one series per bucket boundary. */
  heatmap?: boolean;
}

interface PanelSpec {
  title: string;
  /** What the panel answers (shown as the panel's description in Grafana). */
  description: string;
  type: 'stat' | 'timeseries' | 'heatmap' | 'state-timeline' | 'bargauge' | 'table';
  targets: Target[];
  unit?: string;
  width: number;
  height?: number;
  /** Panel-type specific options and field defaults. */
  options?: Record<string, unknown>;
  defaults?: Record<string, unknown>;
  stack?: boolean;
}

interface RowSpec {
  title: string;
  panels: PanelSpec[];
}

const stat = (
  title: string,
  description: string,
  expr: string,
  unit: string,
  defaults: Record<string, unknown> = {},
): PanelSpec => ({
  title,
  description,
  type: 'stat',
  targets: [{ expr }],
  unit,
  width: 4,
  height: 4,
  options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value' },
  defaults,
});

const quantile = (q: number, metric: string, by: string, filter = S) =>
  `histogram_quantile(${q}, sum by (${by}, le) (rate(${metric}_bucket{${filter}}[${RATE}])))`;

/** Requests of each policy's flagship tier (tierflow_policy_flagship_tier names it). */
const FLAGSHIP_REQUESTS = `sum by (policy) (rate(tierflow_requests_total{${P},mode="auto"}[${RATE}]) * on (policy, tier) group_left () group by (policy, tier) (tierflow_policy_flagship_tier{${S}}))`;
const AUTO_REQUESTS = `sum by (policy) (rate(tierflow_requests_total{${P},mode="auto"}[${RATE}]))`;

export const ROWS: RowSpec[] = [
  {
    title: 'Overview (selected time range)',
    panels: [
      stat(
        'Requests',
        'Requests answered in the selected range, all outcomes.',
        `sum(increase(tierflow_requests_total{${S}}[${RANGE}]))`,
        'short',
      ),
      stat(
        'Spend',
        'What the providers will bill for the range, from reported usage and the price catalog.',
        `sum(increase(tierflow_cost_usd_total{${S}}[${RANGE}]))`,
        'currencyUSD',
      ),
      stat(
        'Flagship-equivalent spend',
        "What the same auto requests would have cost on each policy's flagship model.",
        `sum(increase(tierflow_flagship_cost_usd_total{${P}}[${RANGE}]))`,
        'currencyUSD',
      ),
      stat(
        'Saved',
        'Flagship-equivalent spend minus actual spend, for the auto requests routing made cheaper.',
        `sum(increase(tierflow_saved_usd_total{${P}}[${RANGE}]))`,
        'currencyUSD',
        { color: { mode: 'fixed', fixedColor: 'green' } },
      ),
      stat(
        'Saved share',
        'Saved as a share of the flagship-equivalent spend.',
        `sum(increase(tierflow_saved_usd_total{${P}}[${RANGE}])) / sum(increase(tierflow_flagship_cost_usd_total{${P}}[${RANGE}]))`,
        'percentunit',
      ),
      stat(
        'Server errors',
        'Share of requests answered with a 5xx (after failover: what clients saw).',
        `(sum(increase(tierflow_requests_total{${S},status_class="5xx"}[${RANGE}])) or vector(0)) / sum(increase(tierflow_requests_total{${S}}[${RANGE}]))`,
        'percentunit',
        {
          thresholds: {
            mode: 'absolute',
            steps: [
              { color: 'green', value: null },
              { color: 'orange', value: 0.01 },
              { color: 'red', value: 0.05 },
            ],
          },
        },
      ),
    ],
  },
  {
    title: 'Traffic',
    panels: [
      {
        title: 'Requests by policy and tier',
        description:
          'Where the traffic goes: requests per second by policy and the tier the decision chose ("none": explicit model names).',
        type: 'timeseries',
        targets: [
          {
            expr: `sum by (policy, tier) (rate(tierflow_requests_total{${P},mode!="rejected"}[${RATE}]))`,
            legend: '{{policy}} / {{tier}}',
          },
        ],
        unit: 'reqps',
        width: 12,
        stack: true,
      },
      {
        title: 'Requests by provider and model',
        description: 'Which model served the requests, per second (after failover).',
        type: 'timeseries',
        targets: [
          {
            expr: `sum by (provider, model) (rate(tierflow_requests_total{${S},provider!="none"}[${RATE}]))`,
            legend: '{{provider}}/{{model}}',
          },
        ],
        unit: 'reqps',
        width: 12,
        stack: true,
      },
      {
        title: 'Responses by status class',
        description:
          'What clients got, by routing mode: auto, explicit, or rejected before routing (bad request, unknown model, key refused, budget or rate limit).',
        type: 'timeseries',
        targets: [
          {
            expr: `sum by (mode, status_class) (rate(tierflow_requests_total{${S}}[${RATE}]))`,
            legend: '{{mode}} {{status_class}}',
          },
        ],
        unit: 'reqps',
        width: 12,
      },
      {
        title: 'Routing decision time (p50, p99)',
        description:
          'Time to parse, classify and select: the overhead TierFlow adds before the provider is called.',
        type: 'timeseries',
        targets: [
          { expr: quantile(0.5, 'tierflow_decision_seconds', 'job'), legend: 'p50 {{job}}' },
          { expr: quantile(0.99, 'tierflow_decision_seconds', 'job'), legend: 'p99 {{job}}' },
        ],
        unit: 's',
        width: 12,
      },
    ],
  },
  {
    title: 'Spend and savings',
    panels: [
      {
        title: 'Spend vs flagship-equivalent spend (per hour)',
        description:
          'Actual spend per hour next to what the same auto requests would have cost on the flagship; the gap is the saving.',
        type: 'timeseries',
        targets: [
          { expr: `sum(rate(tierflow_cost_usd_total{${S}}[${RATE}])) * 3600`, legend: 'spend' },
          {
            expr: `sum(rate(tierflow_flagship_cost_usd_total{${P}}[${RATE}])) * 3600`,
            legend: 'flagship-equivalent',
          },
          { expr: `sum(rate(tierflow_saved_usd_total{${P}}[${RATE}])) * 3600`, legend: 'saved' },
        ],
        unit: 'currencyUSD',
        width: 12,
      },
      {
        title: 'Spend per hour by model',
        description: 'Which models the money goes to.',
        type: 'timeseries',
        targets: [
          {
            expr: `sum by (provider, model) (rate(tierflow_cost_usd_total{${S}}[${RATE}])) * 3600`,
            legend: '{{provider}}/{{model}}',
          },
        ],
        unit: 'currencyUSD',
        width: 12,
        stack: true,
      },
      {
        title: 'Saved share by policy',
        description: 'Saved over flagship-equivalent spend, per policy.',
        type: 'timeseries',
        targets: [
          {
            expr: `sum by (policy) (rate(tierflow_saved_usd_total{${P}}[${RATE}])) / sum by (policy) (rate(tierflow_flagship_cost_usd_total{${P}}[${RATE}]))`,
            legend: '{{policy}}',
          },
        ],
        unit: 'percentunit',
        width: 12,
      },
      {
        title: 'Tokens per second by kind',
        description: 'Input, cached input, cache writes and output tokens reported by the providers.',
        type: 'timeseries',
        targets: [
          {
            expr: `sum by (kind) (rate(tierflow_tokens_total{${S}}[${RATE}]))`,
            legend: '{{kind}}',
          },
        ],
        unit: 'short',
        width: 12,
      },
    ],
  },
  {
    title: 'Routing quality',
    panels: [
      {
        title: 'Flagship share vs target',
        description:
          "Share of each policy's auto requests that went to its flagship (last) tier, next to the share it targets (policies with flagshipShare). Far above target: savings are lost; far below: quality is at risk.",
        type: 'timeseries',
        targets: [
          { expr: `${FLAGSHIP_REQUESTS} / ${AUTO_REQUESTS}`, legend: '{{policy}} share' },
          {
            expr: `max by (policy) (tierflow_policy_flagship_share_target{${P}})`,
            legend: '{{policy}} target',
          },
        ],
        unit: 'percentunit',
        width: 12,
        defaults: { min: 0, max: 1 },
      },
      {
        title: 'Complexity score distribution',
        description:
          'How hard the auto requests were (0 easy, 1 hard), per score bucket. The quantile of the share you want on the flagship is the maxScore to set (docs/routing.md).',
        type: 'heatmap',
        targets: [
          {
            expr: `sum by (le) (increase(tierflow_complexity_score_bucket{${P}}[${RATE}]))`,
            legend: '{{le}}',
            heatmap: true,
          },
        ],
        unit: 'short',
        width: 12,
        options: {
          calculate: false,
          yAxis: { unit: 'short' },
          cellGap: 1,
          color: { mode: 'scheme', scheme: 'Oranges', steps: 64 },
        },
      },
      {
        title: 'Complexity score quantiles by policy',
        description: 'Median and 90th percentile of the score: a drift means the traffic changed.',
        type: 'timeseries',
        targets: [
          { expr: quantile(0.5, 'tierflow_complexity_score', 'policy', P), legend: 'p50 {{policy}}' },
          { expr: quantile(0.9, 'tierflow_complexity_score', 'policy', P), legend: 'p90 {{policy}}' },
        ],
        unit: 'short',
        width: 12,
        defaults: { min: 0, max: 1 },
      },
    ],
  },
  {
    title: 'Latency and throughput per model',
    panels: [
      {
        title: 'Time to first token (p50, p95)',
        description: 'From sending an attempt to the first content token, per model.',
        type: 'timeseries',
        targets: [
          {
            expr: quantile(0.5, 'tierflow_time_to_first_token_seconds', 'provider, model'),
            legend: 'p50 {{provider}}/{{model}}',
          },
          {
            expr: quantile(0.95, 'tierflow_time_to_first_token_seconds', 'provider, model'),
            legend: 'p95 {{provider}}/{{model}}',
          },
        ],
        unit: 's',
        width: 12,
      },
      {
        title: 'Output tokens per second (p50, p95)',
        description: 'Generation speed of successful attempts, from the first token to the end, per model.',
        type: 'timeseries',
        targets: [
          {
            expr: quantile(0.5, 'tierflow_output_tokens_per_second', 'provider, model'),
            legend: 'p50 {{provider}}/{{model}}',
          },
          {
            expr: quantile(0.95, 'tierflow_output_tokens_per_second', 'provider, model'),
            legend: 'p95 {{provider}}/{{model}}',
          },
        ],
        unit: 'short',
        width: 12,
      },
      {
        title: 'Time to first byte (p95)',
        description: 'From sending an attempt to the provider response headers, per model.',
        type: 'timeseries',
        targets: [
          {
            expr: quantile(0.95, 'tierflow_upstream_time_to_first_byte_seconds', 'provider, model'),
            legend: '{{provider}}/{{model}}',
          },
        ],
        unit: 's',
        width: 12,
      },
      {
        title: 'Request duration by tier (p50, p95)',
        description: 'From the request arriving to the last byte of the response, per tier.',
        type: 'timeseries',
        targets: [
          { expr: quantile(0.5, 'tierflow_request_duration_seconds', 'tier'), legend: 'p50 {{tier}}' },
          { expr: quantile(0.95, 'tierflow_request_duration_seconds', 'tier'), legend: 'p95 {{tier}}' },
        ],
        unit: 's',
        width: 12,
      },
    ],
  },
  {
    title: 'Providers and failover',
    panels: [
      {
        title: 'Provider error ratio',
        description:
          'Share of attempts per provider that failed for a reason failover acts on (429, 5xx, connect error, timeout, reset, broken stream).',
        type: 'timeseries',
        targets: [
          {
            expr: `sum by (provider) (rate(tierflow_upstream_attempts_total{${S},outcome!~"success|client_error"}[${RATE}])) / sum by (provider) (rate(tierflow_upstream_attempts_total{${S}}[${RATE}]))`,
            legend: '{{provider}}',
          },
        ],
        unit: 'percentunit',
        width: 12,
        defaults: { min: 0, max: 1 },
      },
      {
        title: 'Failovers by cause',
        description: 'Attempts abandoned for another candidate, by the model left and why.',
        type: 'timeseries',
        targets: [
          {
            expr: `sum by (provider, model, reason) (rate(tierflow_failovers_total{${S}}[${RATE}]))`,
            legend: '{{provider}}/{{model}}: {{reason}}',
          },
        ],
        unit: 'reqps',
        width: 12,
        stack: true,
      },
      {
        title: 'Attempts by outcome',
        description: 'Every attempt sent to a provider, by outcome.',
        type: 'timeseries',
        targets: [
          {
            expr: `sum by (provider, outcome) (rate(tierflow_upstream_attempts_total{${S}}[${RATE}]))`,
            legend: '{{provider}}: {{outcome}}',
          },
        ],
        unit: 'reqps',
        width: 12,
        stack: true,
      },
      {
        title: 'Circuit breakers',
        description:
          'Breaker per model, worst over the selected instances: closed (taking traffic), half-open (probing), open (skipped).',
        type: 'state-timeline',
        targets: [
          {
            expr: `max by (provider, model, tier) (tierflow_circuit_breaker_state{${S}})`,
            legend: '{{tier}}: {{provider}}/{{model}}',
          },
        ],
        unit: 'short',
        width: 12,
        options: { showValue: 'never', mergeValues: true, rowHeight: 0.8 },
        defaults: {
          mappings: [
            {
              type: 'value',
              options: {
                '0': { text: 'closed', color: 'green', index: 0 },
                '1': { text: 'half-open', color: 'yellow', index: 1 },
                '2': { text: 'open', color: 'red', index: 2 },
              },
            },
          ],
          color: { mode: 'thresholds' },
        },
      },
    ],
  },
  {
    title: 'Virtual keys',
    panels: [
      {
        title: 'Spend vs budget',
        description:
          "Each virtual key's spend in its budget period as a share of its budget, on the instance closest to it (with shared limits every instance reports the totals).",
        type: 'bargauge',
        targets: [
          {
            expr: `max by (key) (tierflow_virtual_key_spend_usd{${S}} / tierflow_virtual_key_budget_usd{${S}})`,
            legend: '{{key}}',
          },
        ],
        unit: 'percentunit',
        width: 8,
        options: { displayMode: 'gradient', orientation: 'horizontal', showUnfilled: true },
        defaults: {
          min: 0,
          max: 1,
          thresholds: {
            mode: 'absolute',
            steps: [
              { color: 'green', value: null },
              { color: 'orange', value: 0.8 },
              { color: 'red', value: 0.95 },
            ],
          },
        },
      },
      {
        title: 'Spend by key',
        description: 'Spend of each virtual key in its current budget period (USD).',
        type: 'timeseries',
        targets: [{ expr: `max by (key) (tierflow_virtual_key_spend_usd{${S}})`, legend: '{{key}}' }],
        unit: 'currencyUSD',
        width: 8,
      },
      {
        title: 'Rate-limit headroom',
        description:
          "What is left of each key's requests-per-minute and tokens-per-minute limits in the current minute (keys with limits only).",
        type: 'timeseries',
        targets: [
          {
            expr: `1 - max by (key) (tierflow_virtual_key_minute_requests{${S}} / tierflow_virtual_key_rpm_limit{${S}})`,
            legend: '{{key}} requests',
          },
          {
            expr: `1 - max by (key) (tierflow_virtual_key_minute_tokens{${S}} / tierflow_virtual_key_tpm_limit{${S}})`,
            legend: '{{key}} tokens',
          },
        ],
        unit: 'percentunit',
        width: 8,
        defaults: { min: 0, max: 1 },
      },
    ],
  },
  {
    title: 'Operations',
    panels: [
      {
        title: 'Config reloads',
        description:
          'Configuration changes applied, and rejected (the last good configuration keeps serving; the log names the field).',
        type: 'timeseries',
        targets: [
          {
            expr: `sum by (result) (increase(tierflow_config_reloads_total{${S}}[${RATE}]))`,
            legend: '{{result}}',
          },
        ],
        unit: 'short',
        width: 8,
      },
      {
        title: 'Shared state (Redis)',
        description:
          'Instances that reach the shared store for virtual-key limits, and failed syncs (instances started with --redis only).',
        type: 'timeseries',
        targets: [
          { expr: `sum(tierflow_shared_state_up{${S}})`, legend: 'instances up' },
          { expr: `count(tierflow_shared_state_up{${S}})`, legend: 'instances' },
          {
            expr: `sum(rate(tierflow_shared_state_sync_errors_total{${S}}[${RATE}]))`,
            legend: 'sync errors/s',
          },
        ],
        unit: 'short',
        width: 8,
      },
      {
        title: 'Resident memory',
        description: 'Memory of each TierFlow process.',
        type: 'timeseries',
        targets: [{ expr: `tierflow_process_resident_memory_bytes{${S}}`, legend: '{{job}} {{instance}}' }],
        unit: 'bytes',
        width: 8,
      },
    ],
  },
];

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

function variable(name: string, label: string, query: string, allValue: string) {
  return {
    name,
    label,
    type: 'query',
    datasource: DATASOURCE,
    query: { query, refId: name },
    definition: query,
    refresh: 2,
    multi: true,
    includeAll: true,
    allValue,
    current: { selected: true, text: ['All'], value: ['$__all'] },
    sort: 1,
    hide: 0,
  };
}

function panelJson(p: PanelSpec, id: number, gridPos: Record<string, number>) {
  const custom =
    p.type === 'timeseries'
      ? {
          drawStyle: 'line',
          lineWidth: 1,
          fillOpacity: p.stack ? 30 : 10,
          showPoints: 'never',
          spanNulls: false,
          stacking: { mode: p.stack ? 'normal' : 'none', group: 'A' },
        }
      : {};
  return {
    id,
    type: p.type,
    title: p.title,
    description: p.description,
    datasource: DATASOURCE,
    gridPos,
    targets: p.targets.map((t, i) => ({
      refId: String.fromCharCode(65 + i),
      datasource: DATASOURCE,
      expr: t.expr,
      legendFormat: t.legend ?? '__auto',
      ...(t.heatmap ? { format: 'heatmap' } : {}),
      ...(p.type === 'stat' || p.type === 'bargauge' ? { instant: true, range: false } : { range: true }),
    })),
    fieldConfig: {
      defaults: { unit: p.unit ?? 'short', custom, ...p.defaults },
      overrides: [],
    },
    options: {
      ...(p.type === 'timeseries'
        ? {
            legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
            tooltip: { mode: 'multi', sort: 'desc' },
          }
        : {}),
      ...p.options,
    },
  };
}

/** The dashboard as Grafana's JSON model. */
export function dashboard(): Record<string, unknown> {
  const panels: unknown[] = [];
  let id = 1;
  let y = 0;
  for (const row of ROWS) {
    panels.push({
      id: id++,
      type: 'row',
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const p of row.panels) {
      const h = p.height ?? 8;
      if (x + p.width > 24) {
        y += rowHeight;
        x = 0;
        rowHeight = 0;
      }
      panels.push(panelJson(p, id++, { h, w: p.width, x, y }));
      x += p.width;
      rowHeight = Math.max(rowHeight, h);
    }
    y += rowHeight;
  }
  return {
    title: 'TierFlow',
    uid: 'tierflow-overview',
    description:
      'LLM routing: traffic, spend and savings, routing quality, provider health, virtual keys. Generated by scripts/gen-observability.ts.',
    tags: ['tierflow', 'llm'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    timezone: 'browser',
    annotations: {
      list: [
        {
          name: 'Config reloads',
          datasource: DATASOURCE,
          enable: true,
          iconColor: 'blue',
          expr: `sum by (result) (changes(tierflow_config_reloads_total{${S}}[1m])) > 0`,
          titleFormat: 'config {{result}}',
          step: '1m',
        },
      ],
    },
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
          refresh: 1,
        },
        variable('job', 'Job', 'label_values(tierflow_requests_total, job)', '.+'),
        variable(
          'namespace',
          'Namespace',
          'label_values(tierflow_requests_total{job=~"$job"}, namespace)',
          '.*',
        ),
        variable(
          'policy',
          'Policy',
          'label_values(tierflow_requests_total{job=~"$job",namespace=~"$namespace"}, policy)',
          '.*',
        ),
      ],
    },
    panels,
  };
}
