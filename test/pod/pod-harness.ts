// Runs an injected pod's containers as the kubelet and the container runtime would, on this
// machine: volumes from KubeletPod, each process with its container's UID, GID and supplementary
// groups and umask 022 (setpriv drops root's privileges; the tests need root for that), container
// paths in args and env rewritten to the container's view of its mounts, container ports mapped
// to free host ports. The tierflow container runs the image's ENTRYPOINT (from the Dockerfile) with
// the args the webhook gave it; the Envoy container is played by envoy-client.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { V1Container, V1EnvVar } from '@kubernetes/client-node';
import { healthService } from '../../src/extproc/protos.js';
import type { Identity, KubeletPod } from './kubelet.js';

export const REPO = join(import.meta.dirname, '..', '..');

/** Why the harness cannot run here, or undefined when it can (root, to drop to other UIDs). */
export function harnessUnavailable(): string | undefined {
  if (process.getuid?.() !== 0)
    return 'the pod harness runs processes as other UIDs (setpriv), which needs root; CI runs as root';
  return undefined;
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The image's ENTRYPOINT from the Dockerfile (exec form), with `node` being this Node. */
export function imageEntrypoint(): string[] {
  const m = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
  if (!m) throw new Error('Dockerfile has no exec-form ENTRYPOINT');
  const argv = JSON.parse(m[1]!) as string[];
  return argv.map((a, i) => (i === 0 && a === 'node' ? process.execPath : a));
}

export interface Running {
  child: ChildProcess;
  output(): string;
  /** Resolves with the first stdout line matching, rejects when the process exits first. */
  line(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

/** Starts argv with an identity: setpriv (UID, GID, groups, no capabilities), then umask 022. */
export function runAs(id: Identity, argv: string[], env: Record<string, string>): Running {
  const args = [
    `--reuid=${id.uid}`,
    `--regid=${id.gid}`,
    ...(id.groups.length ? [`--groups=${id.groups.join(',')}`] : ['--clear-groups']),
    '--no-new-privs',
    '--inh-caps=-all',
    '--bounding-set=-all',
    '--',
    '/bin/sh',
    '-c',
    'umask 022 && exec "$0" "$@"',
    ...argv,
  ];
  const child = spawn('setpriv', args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters: { match: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  let pending = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    pending += c.toString();
    let i;
    while ((i = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, i);
      pending = pending.slice(i + 1);
      for (const w of [...waiters])
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
    }
  });
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  return {
    child,
    output: () => out,
    line: (match, timeoutMs = 90_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out; output:\n${out}`)), timeoutMs);
        waiters.push({
          match,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`exited with ${code} before the expected line; output:\n${out}`));
        });
      }),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** A container's environment as the kubelet resolves it (values and the fieldRefs we use). */
export function containerEnv(
  pod: KubeletPod,
  c: V1Container,
  rewrite: (v: string) => string,
): Record<string, string> {
  const env: Record<string, string> = {};
  const field = (path: string | undefined) =>
    path === 'metadata.namespace'
      ? (pod.pod.metadata?.namespace ?? '')
      : path === 'metadata.name'
        ? (pod.pod.metadata?.name ?? '')
        : undefined;
  for (const e of c.env ?? ([] as V1EnvVar[])) {
    if (e.value !== undefined) env[e.name] = rewrite(e.value);
    else if (e.valueFrom?.fieldRef) {
      const v = field(e.valueFrom.fieldRef.fieldPath);
      if (v === undefined) throw new Error(`fieldRef ${e.valueFrom.fieldRef.fieldPath} not emulated`);
      env[e.name] = v;
    } else throw new Error(`env ${e.name}: source not emulated`);
  }
  return env;
}

/** Rewrites container paths (mounted ones) and mapped ports in an argument. */
export function rewriter(pod: KubeletPod, container: string, ports: Map<number, number>) {
  return (arg: string): string => {
    let a = arg.replace(/(\/[\w.\-/]+)/g, (p) => pod.hostPath(container, p));
    const m = /^(--[\w-]+=)(\d+)$/.exec(a);
    if (m && ports.has(Number(m[2]))) a = `${m[1]}${ports.get(Number(m[2]))}`;
    return a;
  };
}

/** A kubelet gRPC probe: grpc.health.v1.Health/Check on the port, for a service. */
export async function grpcProbe(port: number, service = ''): Promise<string> {
  const Client = grpc.makeGenericClientConstructor(healthService(), 'Health');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve) => {
      client.waitForReady(Date.now() + 1000, (err) => {
        if (err) return resolve('UNREACHABLE');
        (client as unknown as { Check: grpc.requestCallback<unknown> & ((...a: unknown[]) => void) }).Check(
          { service },
          { deadline: Date.now() + 1000 },
          (e: grpc.ServiceError | null, res?: { status: string }) =>
            resolve(e ? `ERROR ${e.code}` : String(res?.status)),
        );
      });
    });
  } finally {
    client.close();
  }
}

/** Polls an async check (every 100 ms, like a probe period) until it holds. */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function writeKubeconfig(file: string, server: string, token: string, namespace: string): void {
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'sa', user: { token } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'sa', namespace } }],
      'current-context': 'fake',
    }),
    { mode: 0o444 },
  );
}
