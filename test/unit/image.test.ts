// The image: no container tool runs here, so the Dockerfile and the release workflow are checked
// against what a build needs and what the chart expects: every COPY source exists in a clean clone
// (tracked by git, not excluded by .dockerignore), the entrypoint script is there, the runtime
// stage has production dependencies only, the user is numeric and the chart's, no stray ports, and
// the workflow pushes, for two architectures, the image and tag the chart pulls.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { find, renderChart } from '../k8s/helm.js';

const root = join(import.meta.dirname, '..', '..');
const read = (f: string) => readFileSync(join(root, f), 'utf8');

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Dockerfile instructions (continuations joined, comments dropped), with their stage index. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const line of logical) {
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ op, args: m[2]!.trim(), stage });
  }
  return out;
}

const tracked = new Set(
  execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean),
);
const dockerignore = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const ignored = (path: string) =>
  dockerignore.some(
    (p) => path === p || path.startsWith(`${p}/`) || (p.startsWith('*') && path.endsWith(p.slice(1))),
  );

describe('Dockerfile', () => {
  const steps = instructions(read('Dockerfile'));
  const last = Math.max(...steps.map((s) => s.stage));
  const final = steps.filter((s) => s.stage === last);

  it('copies only files a clean clone has, none excluded from the build context', () => {
    const copies = steps.filter((s) => s.op === 'COPY' && !s.args.startsWith('--from'));
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        const exists = tracked.has(src) || [...tracked].some((f) => f.startsWith(`${src}/`));
        expect(exists, `COPY source ${src} is not in the repository`).toBe(true);
        expect(ignored(src), `COPY source ${src} is excluded by .dockerignore`).toBe(false);
      }
    }
  });

  it('runs an entrypoint script that exists, on the compiled output of the build stage', () => {
    const entry = final.find((s) => s.op === 'ENTRYPOINT')!;
    const argv = JSON.parse(entry.args) as string[];
    expect(argv[0]).toBe('node');
    const script = argv.find((a) => a.endsWith('.js'))!;
    expect(tracked.has(script), `${script} is not in the repository`).toBe(true);
    expect(final.some((s) => s.op === 'COPY' && s.args.split(/\s+/)[0] === script.split('/')[0])).toBe(true);
    // bin/tierflow.js loads dist/cli/main.js: the final stage takes dist from the build stage, which compiles src.
    expect(read(script)).toContain('../dist/cli/main.js');
    expect(final.some((s) => s.op === 'COPY' && /^--from=build \/app\/dist\b/.test(s.args))).toBe(true);
    expect(
      steps.some((s) => s.stage < last && s.op === 'RUN' && s.args.includes('tsconfig.build.json')),
    ).toBe(true);
  });

  it('ships production dependencies only, on Node 24', () => {
    const froms = steps.filter((s) => s.op === 'FROM');
    for (const f of froms) expect(f.args).toMatch(/\bnode:24[-.\w]*\b/);
    const prune = steps.find(
      (s) => s.stage < last && s.op === 'RUN' && /npm (prune|ci) [^&]*--omit=dev/.test(s.args),
    );
    expect(prune, 'the build stage must drop devDependencies before node_modules is copied').toBeDefined();
    expect(final.some((s) => s.op === 'COPY' && s.args.startsWith('--from=build /app/node_modules'))).toBe(
      true,
    );
    expect(final.some((s) => s.op === 'RUN' && /npm (i|install|ci)\b/.test(s.args))).toBe(false);
    expect(final.find((s) => s.op === 'ENV' && s.args.includes('NODE_ENV'))?.args).toContain('production');
  });

  it("runs as the chart's numeric non-root user and group", () => {
    const user = final.filter((s) => s.op === 'USER').at(-1)!.args;
    expect(user).toMatch(/^\d+:\d+$/);
    const [uid, gid] = user.split(':').map(Number);
    const values = parse(read('charts/tierflow/values.yaml'));
    expect(uid).toBe(values.sidecar.runAsUser);
    expect(gid).toBe(values.sidecar.sharedGroup);
    const controller = find(renderChart(), 'Deployment', '-controller');
    expect(controller.spec.template.spec.securityContext).toMatchObject({ runAsUser: uid, runAsGroup: gid });
  });

  it('exposes the gateway port only (no Envoy admin or other stray ports)', () => {
    const ports = final.filter((s) => s.op === 'EXPOSE').flatMap((s) => s.args.split(/\s+/));
    expect(ports).toEqual(['8080']);
  });
});

describe('release workflow', () => {
  const wf = parse(read('.github/workflows/release.yml'));
  const steps = wf.jobs.image.steps as Record<string, any>[];

  it('builds on a version tag and pushes the image and tag the chart pulls by default, for amd64 and arm64', () => {
    expect(wf.on.push.tags).toEqual(['v*.*.*']);
    const values = parse(read('charts/tierflow/values.yaml'));
    const chart = parse(read('charts/tierflow/Chart.yaml'));
    expect(wf.env.IMAGE).toBe(values.image.repository);
    // The chart's image tag defaults to its appVersion; the workflow tags {{version}} of v<appVersion>.
    expect(values.image.tag).toBe('');
    const meta = steps.find((s) => String(s.uses).startsWith('docker/metadata-action'))!;
    expect(meta.with.tags).toContain('type=semver,pattern={{version}}');
    expect(chart.appVersion).toBe(JSON.parse(read('package.json')).version);
    const build = steps.find((s) => String(s.uses).startsWith('docker/build-push-action'))!;
    expect(build.with.push).toBe(true);
    expect(String(build.with.platforms).split(',')).toEqual(['linux/amd64', 'linux/arm64']);
    expect(steps.some((s) => String(s.uses).startsWith('docker/setup-qemu-action'))).toBe(true);
    expect(wf.permissions.packages).toBe('write');
  });
});
