// Slow and idle clients against the gateway: slow headers (a byte at a time), slow bodies, idle
// keep-alive connections, more of them than the connection limit. What must hold: every one is
// closed by the server within its timeout, descriptors come back to where they were, and fresh
// clients are served once the slow ones are gone. Used by slow-client.test.ts and
// scripts/security-slow-clients.ts (full size, against a `tierflow serve` process).
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';

export interface SlowClientReport {
  opened: number;
  /** Connections the server closed (or refused) before the wait ran out. */
  closedByServer: number;
  stillOpen: number;
  /** Milliseconds from the first connection until the server had closed the last one. */
  allClosedAfterMs: number | undefined;
  fds: { before: number; peak: number; after: number };
}

/** Open descriptors of a process (Linux), or -1. */
export function openFds(pid: number | 'self' = 'self'): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

type Behaviour = 'slow-headers' | 'slow-body' | 'idle-keepalive';

function slowClient(port: number, behaviour: Behaviour, gapMs: number): Promise<{ closedAt: number }> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1');
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearInterval(timer);
      s.destroy();
      resolve({ closedAt: Date.now() });
    };
    s.on('close', done);
    s.on('error', done);
    s.on('data', () => {}); // a 408 or a response; the close is what counts
    s.on('connect', () => {
      if (behaviour === 'idle-keepalive') {
        s.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n'); // then nothing more, ever
        return;
      }
      if (behaviour === 'slow-body')
        s.write(
          'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{',
        );
      else s.write('POST /v1/chat/completions HTTP/1.1\r\n');
      let i = 0;
      timer = setInterval(() => {
        if (!s.destroyed) s.write(behaviour === 'slow-body' ? ' ' : `x-${i++}: y\r\n`);
      }, gapMs);
    });
  });
}

/** Opens `counts` slow clients of each kind at once and waits until the server closed them all (or `waitMs`). */
export async function runSlowClients(
  port: number,
  counts: Record<Behaviour, number>,
  options: { gapMs?: number; waitMs?: number; fdsOf?: number | 'self' } = {},
): Promise<SlowClientReport> {
  const fdsOf = options.fdsOf ?? 'self';
  const before = openFds(fdsOf);
  const started = Date.now();
  const clients: Promise<{ closedAt: number }>[] = [];
  for (const [behaviour, n] of Object.entries(counts) as [Behaviour, number][]) {
    for (let i = 0; i < n; i++) clients.push(slowClient(port, behaviour, options.gapMs ?? 200));
  }
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, openFds(fdsOf))), 100);
  const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), options.waitMs ?? 30_000));
  const settled: ({ closedAt: number } | 'timeout')[] = await Promise.all(
    clients.map((c) => Promise.race([c, deadline])),
  );
  clearInterval(sampler);
  const closed = settled.filter((s): s is { closedAt: number } => s !== 'timeout');
  await new Promise((r) => setTimeout(r, 200)); // let the server side finish closing
  return {
    opened: clients.length,
    closedByServer: closed.length,
    stillOpen: clients.length - closed.length,
    allClosedAfterMs:
      closed.length === clients.length ? Math.max(...closed.map((c) => c.closedAt)) - started : undefined,
    fds: { before, peak, after: openFds(fdsOf) },
  };
}
