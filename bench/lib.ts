// Shared helpers for the benchmarks: percentiles, an open-loop load generator, RSS readings.
import { appendFileSync, readFileSync } from 'node:fs';

export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function summarize(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 0.5),
    p90: percentile(s, 0.9),
    p99: percentile(s, 0.99),
    max: s[s.length - 1] ?? NaN,
  };
}

/** Fires `fn` at a fixed rate regardless of completions (open loop), returns latencies in ms. */
export async function openLoop(ratePerSec: number, durationMs: number, fn: () => Promise<void>) {
  const latencies: number[] = [];
  let errors = 0;
  const total = Math.floor((ratePerSec * durationMs) / 1000);
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / ratePerSec;
    let wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait - 1));
    while ((wait = due - performance.now()) > 0) await new Promise((r) => setImmediate(r));
    // Latency counts from the scheduled time, so queueing in the generator is not hidden.
    pending.push(
      fn().then(
        () => void latencies.push(performance.now() - due),
        () => void errors++,
      ),
    );
  }
  await Promise.all(pending);
  return { latencies, errors, achievedRate: (total * 1000) / (performance.now() - start) };
}

export function rssMb(pid: number = process.pid): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

export const fmt = (x: number, digits = 3) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

/** CPU time (user + system) a process has used, in ms (Linux clock ticks of 10 ms). */
export function cpuMs(pid: number = process.pid): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** One figure for the summary table `npm run bench` prints (bench/run.ts). */
export interface Figure {
  /** Plane or part: decision, classifier, sidecar, gateway. */
  plane: string;
  what: string;
  /** TierFlow's figure, already formatted (with its unit). */
  value: string;
  /** The reference's figure (no-op server, bare proxy, peer), formatted; '' if none. */
  reference?: string;
  /** TierFlow relative to the reference, e.g. 1.42 (x). */
  ratio?: number;
  goal?: string;
  /** Whether the goal is met; undefined when there is no goal. */
  ok?: boolean;
}

/**
 * Hands a figure to bench/run.ts, which sets BENCH_FIGURES to a file: one JSON object a line.
 * Run alone, a benchmark only prints its own output.
 */
export function figure(f: Figure): void {
  const file = process.env.BENCH_FIGURES;
  if (file) appendFileSync(file, JSON.stringify(f) + '\n');
}
