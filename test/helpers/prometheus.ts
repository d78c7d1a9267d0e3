// Debian's prometheus and promtool for the tests of the dashboard and the alert rules. .ci/run
// installs the package; where it is missing those tests are skipped with a notice, unless
// TIERFLOW_REQUIRE_PROMETHEUS is set (as in CI).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function findPrometheusTool(name: 'prometheus' | 'promtool'): string | undefined {
  for (const bin of [name, `/usr/bin/${name}`, `/usr/local/bin/${name}`]) {
    try {
      execFileSync(bin, ['--version'], { stdio: 'ignore' });
      return bin;
    } catch {
      /* try the next */
    }
  }
  if (process.env.TIERFLOW_REQUIRE_PROMETHEUS) {
    throw new Error(`${name} is required (TIERFLOW_REQUIRE_PROMETHEUS is set) but not installed`);
  }
  process.stderr.write(`${name} not installed: skipping its tests (apt-get install prometheus)\n`);
  return undefined;
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface ScrapeTarget {
  job: string;
  /** host:port serving /metrics */
  address: string;
  labels?: Record<string, string>;
}

export interface QueryResult {
  metric: Record<string, string>;
  value: [number, string];
}

/** A real Prometheus server on a free loopback port, scraping `targets` every second. */
export class PrometheusServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    private readonly output: () => string,
  ) {}

  static async start(bin: string, targets: ScrapeTarget[]): Promise<PrometheusServer> {
    const dir = mkdtempSync(join(tmpdir(), 'tierflow-prom-'));
    const config = {
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      scrape_configs: targets.map((t) => ({
        job_name: t.job,
        static_configs: [{ targets: [t.address], labels: t.labels ?? {} }],
      })),
    };
    writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(config));
    const port = await freePort();
    const child = spawn(
      bin,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const server = new PrometheusServer(child, `http://127.0.0.1:${port}`, () => out);
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${out}`);
      const ready = await fetch(`${server.url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) return server;
      if (Date.now() > deadline) throw new Error(`prometheus not ready after 20 s: ${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** An instant query through the HTTP API; throws with Prometheus' error on a bad query. */
  async query(promql: string): Promise<QueryResult[]> {
    const res = await fetch(`${this.url}/api/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: promql }),
    });
    const body = (await res.json()) as {
      status: string;
      error?: string;
      data?: { resultType: string; result: QueryResult[] | [number, string] };
    };
    if (body.status !== 'success') throw new Error(`${body.error}\n  in: ${promql}`);
    const data = body.data!;
    if (data.resultType === 'scalar') return [{ metric: {}, value: data.result as [number, string] }];
    return data.result as QueryResult[];
  }

  /** Health of every scrape target, by job. */
  async targets(): Promise<{ job: string; health: string; lastError: string }[]> {
    const res = await fetch(`${this.url}/api/v1/targets`);
    const body = (await res.json()) as {
      data: { activeTargets: { labels: { job: string }; health: string; lastError: string }[] };
    };
    return body.data.activeTargets.map((t) => ({
      job: t.labels.job,
      health: t.health,
      lastError: t.lastError,
    }));
  }

  get log(): string {
    return this.output();
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}
