// `tierflow report`: a one-screen summary from TierFlow's metrics, read either from one running
// instance's /metrics (totals since it started) or from Prometheus (increases over a window, all
// instances). Both sources become the same list of samples; summarize() and render() do not care
// which. No I/O here: src/cli/report.ts fetches.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * What the report reads: counters (and histogram buckets) are summed by `by`, gauges take the
 * max by `by` (with shared limits every instance reports the same key totals).
 */
export const REPORT_METRICS: readonly { name: string; kind: 'counter' | 'gauge'; by: string[] }[] = [
  {
    name: 'tierflow_requests_total',
    kind: 'counter',
    by: ['mode', 'policy', 'tier', 'provider', 'model', 'status_class'],
  },
  { name: 'tierflow_cost_usd_total', kind: 'counter', by: ['provider', 'model'] },
  { name: 'tierflow_flagship_cost_usd_total', kind: 'counter', by: ['policy'] },
  { name: 'tierflow_saved_usd_total', kind: 'counter', by: ['policy'] },
  { name: 'tierflow_failovers_total', kind: 'counter', by: ['provider', 'model', 'reason'] },
  { name: 'tierflow_time_to_first_token_seconds_bucket', kind: 'counter', by: ['provider', 'model', 'le'] },
  { name: 'tierflow_policy_flagship_tier', kind: 'gauge', by: ['policy', 'tier'] },
  { name: 'tierflow_policy_flagship_share_target', kind: 'gauge', by: ['policy'] },
  { name: 'tierflow_circuit_breaker_state', kind: 'gauge', by: ['provider', 'model'] },
  { name: 'tierflow_virtual_key_spend_usd', kind: 'gauge', by: ['key'] },
  { name: 'tierflow_virtual_key_budget_usd', kind: 'gauge', by: ['key'] },
  { name: 'tierflow_virtual_key_minute_requests', kind: 'gauge', by: ['key'] },
  { name: 'tierflow_virtual_key_rpm_limit', kind: 'gauge', by: ['key'] },
];

/** The PromQL that yields one metric of REPORT_METRICS over `window` (e.g. "24h"). */
export function reportQuery(metric: (typeof REPORT_METRICS)[number], window: string): string {
  const by = metric.by.join(', ');
  return metric.kind === 'counter'
    ? `sum by (${by}) (increase(${metric.name}[${window}]))`
    : `max by (${by}) (${metric.name})`;
}

/** Parses the Prometheus text exposition format (what /metrics serves). */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    let name: string;
    let labels: Record<string, string> = {};
    let rest: string;
    if (brace !== -1 && (space === -1 || brace < space)) {
      name = line.slice(0, brace);
      const parsed = parseLabels(line, brace + 1);
      labels = parsed.labels;
      rest = line.slice(parsed.end + 1);
    } else {
      name = line.slice(0, space);
      rest = line.slice(space + 1);
    }
    const value = Number(rest.trim().split(/\s+/)[0]);
    if (name && !Number.isNaN(value)) out.push({ name, labels, value });
  }
  return out;
}

function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start;
  while (i < line.length && line[i] !== '}') {
    const eq = line.indexOf('=', i);
    const key = line.slice(i, eq).trim();
    let j = eq + 2; // past ="
    let value = '';
    while (j < line.length && line[j] !== '"') {
      if (line[j] === '\\') {
        const next = line[j + 1];
        value += next === 'n' ? '\n' : next;
        j += 2;
      } else value += line[j++];
    }
    labels[key] = value;
    i = j + 1;
    if (line[i] === ',') i++;
  }
  return { labels, end: i };
}

export interface ModelLine {
  model: string;
  requests: number;
  share: number;
  spendUsd: number;
  ttftP50Seconds?: number;
}

export interface Report {
  requests: { total: number; auto: number; explicit: number; rejected: number; serverErrors: number };
  spendUsd: number;
  flagshipSpendUsd: number;
  savedUsd: number;
  flagshipShare: { policy: string; share: number; target?: number; requests: number }[];
  topModels: ModelLine[];
  failovers: { total: number; byReason: Record<string, number>; topModel?: string };
  openBreakers: { model: string; state: 'open' | 'half-open' }[];
  keys: { key: string; spendUsd: number; budgetUsd?: number; minuteRequests?: number; rpm?: number }[];
}

const TOP_MODELS = 6;

export function summarize(samples: readonly Sample[]): Report {
  const of = (name: string) => samples.filter((s) => s.name === name);
  const sum = (xs: readonly Sample[]) => xs.reduce((a, s) => a + s.value, 0);
  const group = (
    xs: readonly Sample[],
    key: (s: Sample) => string,
    combine = (a: number, b: number) => a + b,
  ) => {
    const m = new Map<string, number>();
    for (const s of xs) {
      const k = key(s);
      const prev = m.get(k);
      m.set(k, prev === undefined ? s.value : combine(prev, s.value));
    }
    return m;
  };
  const max = (a: number, b: number) => Math.max(a, b);
  const modelOf = (s: Sample) => `${s.labels.provider}/${s.labels.model}`;

  const requests = of('tierflow_requests_total');
  const byMode = group(requests, (s) => s.labels.mode ?? '');
  const total = sum(requests);

  const flagshipTier = new Map(
    of('tierflow_policy_flagship_tier').map((s) => [s.labels.policy!, s.labels.tier!]),
  );
  const targets = group(of('tierflow_policy_flagship_share_target'), (s) => s.labels.policy!, max);
  const auto = requests.filter((s) => s.labels.mode === 'auto');
  const autoByPolicy = group(auto, (s) => s.labels.policy!);
  const flagshipByPolicy = group(
    auto.filter((s) => flagshipTier.get(s.labels.policy!) === s.labels.tier),
    (s) => s.labels.policy!,
  );
  const flagshipShare = [...autoByPolicy]
    .filter(([, n]) => n > 0)
    .map(([policy, n]) => ({
      policy,
      share: (flagshipByPolicy.get(policy) ?? 0) / n,
      requests: n,
      ...(targets.has(policy) ? { target: targets.get(policy)! } : {}),
    }))
    .sort((a, b) => b.requests - a.requests);

  const served = requests.filter((s) => s.labels.provider && s.labels.provider !== 'none');
  const byModel = group(served, modelOf);
  const spendByModel = group(of('tierflow_cost_usd_total'), modelOf);
  const buckets = of('tierflow_time_to_first_token_seconds_bucket');
  const topModels = [...byModel]
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP_MODELS)
    .map(([model, n]) => {
      const p50 = quantileFromBuckets(
        0.5,
        buckets.filter((s) => modelOf(s) === model),
      );
      return {
        model,
        requests: n,
        share: n / (sum(served) || 1),
        spendUsd: spendByModel.get(model) ?? 0,
        ...(p50 !== undefined ? { ttftP50Seconds: p50 } : {}),
      };
    });

  const failovers = of('tierflow_failovers_total');
  const byFailedModel = [...group(failovers, modelOf)].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  const byReason = Object.fromEntries(
    [...group(failovers, (s) => s.labels.reason!)].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]),
  );

  const openBreakers = [...group(of('tierflow_circuit_breaker_state'), modelOf, max)]
    .filter(([, v]) => v > 0)
    .map(([model, v]) => ({ model, state: v >= 2 ? ('open' as const) : ('half-open' as const) }));

  const keyGauge = (name: string) => group(of(name), (s) => s.labels.key!, max);
  const spend = keyGauge('tierflow_virtual_key_spend_usd');
  const budget = keyGauge('tierflow_virtual_key_budget_usd');
  const minute = keyGauge('tierflow_virtual_key_minute_requests');
  const rpm = keyGauge('tierflow_virtual_key_rpm_limit');
  const keys = [...spend]
    .map(([key, spendUsd]) => ({
      key,
      spendUsd,
      ...(budget.has(key) ? { budgetUsd: budget.get(key)! } : {}),
      ...(minute.has(key) ? { minuteRequests: minute.get(key)! } : {}),
      ...(rpm.has(key) ? { rpm: rpm.get(key)! } : {}),
    }))
    .sort((a, b) => b.spendUsd - a.spendUsd);

  return {
    requests: {
      total,
      auto: byMode.get('auto') ?? 0,
      explicit: byMode.get('explicit') ?? 0,
      rejected: byMode.get('rejected') ?? 0,
      serverErrors: sum(requests.filter((s) => s.labels.status_class === '5xx')),
    },
    spendUsd: sum(of('tierflow_cost_usd_total')),
    flagshipSpendUsd: sum(of('tierflow_flagship_cost_usd_total')),
    savedUsd: sum(of('tierflow_saved_usd_total')),
    flagshipShare,
    topModels,
    failovers: {
      total: sum(failovers),
      byReason,
      ...(byFailedModel[0] ? { topModel: byFailedModel[0][0] } : {}),
    },
    openBreakers,
    keys,
  };
}

/** The q-quantile of cumulative histogram buckets, interpolated inside the bucket (as histogram_quantile). */
export function quantileFromBuckets(q: number, buckets: readonly Sample[]): number | undefined {
  const byLe = new Map<number, number>();
  for (const b of buckets) {
    const le = b.labels.le === '+Inf' ? Infinity : Number(b.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + b.value);
  }
  const sorted = [...byLe].sort((a, b) => a[0] - b[0]);
  const count = sorted.at(-1)?.[1] ?? 0;
  if (count <= 0) return undefined;
  const rank = q * count;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, c] of sorted) {
    if (c >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / (c - prevCount || 1);
    }
    prevLe = le;
    prevCount = c;
  }
  return undefined;
}

function usd(v: number): string {
  if (v === 0) return '$0';
  if (v >= 100) return `$${v.toLocaleString('en-US', { maximumFractionDigits: 0 })}`;
  if (v >= 0.01) return `$${v.toFixed(2)}`;
  // two significant digits of a fraction of a cent
  return `$${v.toFixed(Math.min(8, 1 - Math.floor(Math.log10(v))))}`;
}
const pct = (v: number) => `${(v * 100).toFixed(v < 0.1 ? 1 : 0)}%`;
const int = (v: number) => Math.round(v).toLocaleString('en-US');
const secs = (v: number) => (v < 1 ? `${Math.round(v * 1000)} ms` : `${v.toFixed(2)} s`);

/** The report as text for a terminal, about one screen. */
export function render(r: Report, source: string): string {
  const out: string[] = [`TierFlow report: ${source}`, ''];
  const q = r.requests;
  out.push(
    `Requests    ${int(q.total)}  (auto ${int(q.auto)}, explicit ${int(q.explicit)}, rejected ${int(q.rejected)})` +
      (q.total ? `  server errors ${pct(q.serverErrors / q.total)}` : ''),
  );
  out.push(
    `Spend       ${usd(r.spendUsd)}   flagship-equivalent ${usd(r.flagshipSpendUsd)}   saved ${usd(r.savedUsd)}` +
      (r.flagshipSpendUsd > 0 ? ` (${pct(r.savedUsd / r.flagshipSpendUsd)})` : ''),
  );
  if (r.flagshipShare.length) {
    out.push(
      'Flagship    ' +
        r.flagshipShare
          .map(
            (p) =>
              `${p.policy} ${pct(p.share)}` + (p.target !== undefined ? ` (target ${pct(p.target)})` : ''),
          )
          .join(', '),
    );
  }
  if (r.topModels.length) {
    out.push('', 'Top models                          requests   share      spend   TTFT p50');
    for (const m of r.topModels) {
      out.push(
        `  ${m.model.padEnd(32)} ${int(m.requests).padStart(8)} ${pct(m.share).padStart(7)} ${usd(m.spendUsd).padStart(10)} ${(m.ttftP50Seconds === undefined ? '-' : secs(m.ttftP50Seconds)).padStart(10)}`,
      );
    }
  }
  out.push('');
  const reasons = Object.entries(r.failovers.byReason)
    .map(([k, v]) => `${k} ${int(v)}`)
    .join(', ');
  out.push(
    `Failovers   ${int(r.failovers.total)}` +
      (r.failovers.total ? `  (${reasons}; most from ${r.failovers.topModel})` : ''),
  );
  out.push(
    `Breakers    ${r.openBreakers.length ? r.openBreakers.map((b) => `${b.model} ${b.state}`).join(', ') : 'all closed'}`,
  );
  if (r.keys.length) {
    out.push('', 'Virtual keys                 spend       budget    used   req/min');
    for (const k of r.keys) {
      out.push(
        `  ${k.key.padEnd(24)} ${usd(k.spendUsd).padStart(9)} ${(k.budgetUsd === undefined ? '-' : usd(k.budgetUsd)).padStart(12)} ${(k.budgetUsd ? pct(k.spendUsd / k.budgetUsd) : '-').padStart(7)} ${(k.minuteRequests === undefined ? '-' : int(k.minuteRequests) + (k.rpm ? `/${int(k.rpm)}` : '')).padStart(9)}`,
      );
    }
  }
  return out.join('\n') + '\n';
}
