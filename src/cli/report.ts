// tierflow report: a one-screen summary of a running instance's metrics, or of Prometheus.
import { parseArgs } from 'node:util';
import {
  parseExposition,
  render,
  REPORT_METRICS,
  reportQuery,
  type Sample,
  summarize,
} from '../observe/report.js';

const HELP = `usage: tierflow report [URL] [options]

Prints requests, spend and savings, flagship share, top models, failovers, breakers and
virtual-key spend on one screen.

  URL                    a running gateway or sidecar: its /metrics (default
                         http://127.0.0.1:8080/metrics; a base URL gets /metrics appended).
                         Totals since that process started.
  --prometheus URL       read Prometheus instead (e.g. http://prometheus:9090): every instance it
                         scrapes, over --window
  --window DURATION      Prometheus range, e.g. 1h, 24h, 7d (default 24h)
  --json                 print the summary as JSON
  -h, --help
`;

const TIMEOUT_MS = 10_000;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      prometheus: { type: 'string' },
      window: { type: 'string', default: '24h' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!/^\d+[smhdw]$/.test(values.window)) {
    process.stderr.write(`tierflow report: invalid --window '${values.window}' (e.g. 1h, 24h, 7d)\n`);
    return 2;
  }
  let samples: Sample[];
  let source: string;
  try {
    if (values.prometheus) {
      const base = values.prometheus.replace(/\/+$/, '');
      samples = await fromPrometheus(base, values.window);
      source = `${base}, last ${values.window}`;
    } else {
      const url = metricsUrl(positionals[0] ?? 'http://127.0.0.1:8080');
      samples = parseExposition(await get(url));
      source = `${url} (since the process started)`;
    }
  } catch (err) {
    process.stderr.write(`tierflow report: ${(err as Error).message}\n`);
    return 1;
  }
  if (!samples.some((s) => s.name.startsWith('tierflow_'))) {
    process.stderr.write(`tierflow report: no TierFlow metrics at ${source}\n`);
    return 1;
  }
  const report = summarize(samples);
  process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : render(report, source));
  return 0;
}

function metricsUrl(arg: string): string {
  const url = new URL(arg);
  if (url.pathname === '/' || url.pathname === '' || url.pathname.replace(/\/+$/, '') === '/v1')
    url.pathname = '/metrics';
  return url.toString();
}

async function get(url: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    throw new Error(`cannot reach ${url}: ${(err as Error).cause ?? (err as Error).message}`, {
      cause: err,
    });
  }
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return res.text();
}

async function fromPrometheus(base: string, window: string): Promise<Sample[]> {
  const results = await Promise.all(
    REPORT_METRICS.map(async (metric) => {
      const url = `${base}/api/v1/query?query=${encodeURIComponent(reportQuery(metric, window))}`;
      const body = JSON.parse(await get(url)) as {
        status: string;
        error?: string;
        data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      if (body.status !== 'success') throw new Error(`Prometheus: ${body.error}`);
      return body.data!.result.map((r) => ({
        name: metric.name,
        labels: r.metric,
        value: Number(r.value[1]),
      }));
    }),
  );
  return results.flat().filter((s) => Number.isFinite(s.value));
}
