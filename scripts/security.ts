// Full-size runs of the standing security suites (test/security), printing their figures:
//   node scripts/security.ts fuzz [--cases N] [--seed S]       both planes + raw HTTP abuse
//   node scripts/security.ts canary [--rounds N]               every family, both planes
//   node scripts/security.ts slow-clients [--headers N] [--bodies N] [--idle N] [--nofile N]
//                                          [--request-timeout S]
// The CI versions (small) are the matching test/security/*.test.ts files.
import './run-from-source.ts';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    cases: { type: 'string' },
    seed: { type: 'string' },
    rounds: { type: 'string' },
    headers: { type: 'string' },
    bodies: { type: 'string' },
    idle: { type: 'string' },
    nofile: { type: 'string' },
    'request-timeout': { type: 'string' },
  },
});
const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
const { canaryConfig, canaryKeys, findLeaks, runScenarios, startFamilies, startPlanes } =
  await import('../test/security/canary.ts');

async function withPlanes<T>(
  fn: (
    p: Awaited<ReturnType<typeof startPlanes>>,
    f: Awaited<ReturnType<typeof startFamilies>>,
    k: ReturnType<typeof canaryKeys>,
  ) => Promise<T>,
) {
  const keys = canaryKeys();
  const families = await startFamilies(keys);
  const planes = await startPlanes(canaryConfig(families, keys));
  try {
    return await fn(planes, families, keys);
  } finally {
    await planes.close();
    await Promise.all(families.map((f) => f.mock.close()));
  }
}

async function fuzz(): Promise<number> {
  const { fuzzCases, runFuzz, runRawAbuse } = await import('../test/security/fuzz.ts');
  const n = num(values.cases, 10_000);
  const seed = num(values.seed, 12);
  return withPlanes(async (planes) => {
    let bad = 0;
    const t0 = Date.now();
    for (const [plane, base] of [
      ['gateway', planes.gatewayUrl],
      ['sidecar', planes.sidecarUrl],
    ] as const) {
      const r = await runFuzz(base, plane, fuzzCases(seed, n), 8);
      bad += r.serverErrors.length + r.misshapen.length;
      console.log(
        JSON.stringify({
          plane,
          seed,
          ...r,
          serverErrors: r.serverErrors.slice(0, 10),
          misshapen: r.misshapen.slice(0, 10),
        }),
      );
    }
    const raw = await runRawAbuse(Number(new URL(planes.gatewayUrl).port));
    bad += raw.serverErrors.length + raw.misshapen.length;
    console.log(JSON.stringify({ plane: 'gateway raw HTTP', ...raw }));
    console.log(
      JSON.stringify({
        envoyHarnessViolations: planes.harness.violations.length,
        seconds: (Date.now() - t0) / 1000,
      }),
    );
    return bad === 0 && planes.harness.violations.length === 0 ? 0 : 1;
  });
}

async function canary(): Promise<number> {
  const rounds = num(values.rounds, 5);
  return withPlanes(async (planes, families, keys) => {
    let exchanges = 0;
    const texts: { where: string; text: string }[] = [];
    for (let i = 0; i < rounds; i++) {
      const ex = await runScenarios(
        families,
        planes,
        [400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503, 504, 529],
      );
      exchanges += ex.length;
      for (const e of ex) texts.push({ where: `${e.plane} ${e.what}`, text: e.text });
    }
    for (const [i, l] of planes.logs.entries()) texts.push({ where: `log ${i}`, text: l });
    texts.push({ where: '/metrics', text: await planes.metricsText() });
    const secrets = [keys.openai, keys.anthropic, keys.gemini, keys.azure, keys.awsSecret, keys.awsSession];
    const leaks = findLeaks(texts, secrets);
    console.log(
      JSON.stringify({
        exchanges,
        providerRequests: Object.fromEntries(families.map((f) => [f.name, f.mock.requests.length])),
        logLines: planes.logs.length,
        searchedForms: secrets.length,
        leaks: leaks.length,
        firstLeaks: leaks.slice(0, 10),
      }),
    );
    return leaks.length === 0 ? 0 : 1;
  });
}

async function slowClients(): Promise<number> {
  const { runSlowClients, openFds } = await import('../test/security/slow-client.ts');
  const { startOpenAIMock } = await import('../test/mocks/openai-mock.ts');
  const mock = await startOpenAIMock();
  const dir = mkdtempSync(join(tmpdir(), 'tierflow-slow-'));
  const file = join(dir, 'tierflow.yaml');
  writeFileSync(
    file,
    stringify({
      providers: [
        {
          name: 'oa',
          type: 'openai-compatible',
          baseUrl: mock.url,
          credentials: { apiKey: 'sk-local-test' },
          models: [
            {
              name: 'm',
              tier: 'lightweight',
              pricing: { inputPerMTok: 1, outputPerMTok: 1 },
              contextWindow: 100000,
              maxOutputTokens: 1000,
              capabilities: ['streaming'],
            },
          ],
        },
      ],
      policies: [{ name: 'default', virtualModels: ['auto'], tiers: [{ name: 'lightweight' }] }],
    }),
  );
  const nofile = num(values.nofile, 256);
  const requestTimeout = num(values['request-timeout'], 30);
  const node = resolve('node_modules/.bin/node');
  const child = spawn(
    'sh',
    [
      '-c',
      `ulimit -n ${nofile} && exec "${node}" bin/tierflow.js serve --port 0 --config "${file}" --request-timeout ${requestTimeout}`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((ok, fail) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /"url":"http:\/\/127\.0\.0\.1:(\d+)\/v1"/.exec(out);
      if (m) ok(Number(m[1]));
    });
    child.on('exit', (code) => fail(new Error(`tierflow serve exited with ${code}`)));
  });
  const ask = async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }),
      });
      return String(r.status);
    } catch {
      return 'refused';
    }
  };
  const counts = {
    'slow-headers': num(values.headers, 800),
    'slow-body': num(values.bodies, 200),
    'idle-keepalive': num(values.idle, 100),
  };
  const t0 = Date.now();
  const run = runSlowClients(port, counts, {
    gapMs: 1000,
    waitMs: (requestTimeout + 40) * 1000,
    fdsOf: child.pid,
  });
  // Fresh clients during the flood: served, or refused at the connection limit; never a 502.
  await new Promise((r) => setTimeout(r, 3000));
  const during: Record<string, number> = {};
  for (let i = 0; i < 20; i++) {
    const s = await ask();
    during[s] = (during[s] ?? 0) + 1;
  }
  const report = await run;
  const after = await ask();
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const resets = (
    metrics.match(/tierflow_upstream_attempts_total\{[^}]*outcome="(reset|connect_error)"[^}]*\} (\d+)/g) ??
    []
  ).length;
  console.log(
    JSON.stringify({
      nofile,
      requestTimeoutS: requestTimeout,
      ...report,
      freshDuringFlood: during,
      freshAfter: after,
      providerResetSeries: resets,
      childFdsNow: openFds(child.pid!),
      seconds: (Date.now() - t0) / 1000,
    }),
  );
  child.kill('SIGTERM');
  await mock.close();
  return report.stillOpen === 0 && after === '200' && !during['502'] ? 0 : 1;
}

const commands: Record<string, () => Promise<number>> = { fuzz, canary, 'slow-clients': slowClients };
const cmd = commands[positionals[0] ?? ''];
if (!cmd) {
  console.error('usage: node scripts/security.ts fuzz|canary|slow-clients [options]');
  process.exit(2);
}
process.exit(await cmd());
