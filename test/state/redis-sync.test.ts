// Shared virtual-key limits against a real Redis server: two replicas (two KeyLimits, each with
// its own RedisLimitSync and connection) agree on rpm and budgets; an outage loses nothing; the
// password never reaches a log line; Redis keys never carry the virtual key.
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CompiledVirtualKey } from '../../src/core/config/compiled.js';
import { KeyLimits } from '../../src/core/limits.js';
import { createLogger, type Logger } from '../../src/observe/log.js';
import { RedisLimitSync, redactRedisUrl } from '../../src/state/redis-sync.js';
import { findRedisServer, RedisServer } from '../helpers/redis.js';

const bin = findRedisServer();
const SECRET_KEY = 'tf-live-very-secret-virtual-key';
const PASSWORD = 'p4ss-w0rd-never-logged';

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger('debug', {}, (line) => lines.push(line)), lines };
}

const waitFor = async (cond: () => boolean, ms = 5_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

function replica(
  server: RedisServer,
  keys: CompiledVirtualKey[],
  extra: { password?: string; log?: Logger } = {},
): { limits: KeyLimits; sync: RedisLimitSync; errors: () => number; states: boolean[] } {
  const limits = new KeyLimits();
  let errors = 0;
  const states: boolean[] = [];
  const sync = new RedisLimitSync(limits, {
    url: server.url,
    ...(extra.password ? { password: extra.password } : {}),
    keyPrefix: 'test:',
    intervalMs: 60_000, // the tests call sync() themselves
    configuredKeys: () => keys,
    log: extra.log ?? createLogger('error', {}, () => {}),
    onState: (up) => states.push(up),
    onError: () => errors++,
  });
  return { limits, sync, errors: () => errors, states };
}

const admitted = (limits: KeyLimits, k: CompiledVirtualKey): boolean => {
  try {
    limits.admit(k);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(!bin)('shared limits through Redis', () => {
  let server: RedisServer;
  const closers: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    server = await RedisServer.start(bin!);
  });
  afterAll(async () => {
    for (const c of closers) await c();
    await server?.stop();
  });

  async function started(keys: CompiledVirtualKey[]) {
    const r = replica(server, keys);
    closers.push(() => r.sync.close());
    await r.sync.start();
    await waitFor(() => r.sync.up);
    await r.sync.sync();
    return r;
  }

  it('two replicas share one requests-per-minute limit', async () => {
    const k: CompiledVirtualKey = { name: 'rpm', keyHash: '1'.repeat(64), rpm: 5 };
    const a = await started([k]);
    const b = await started([k]);
    for (let i = 0; i < 3; i++) expect(admitted(a.limits, k)).toBe(true);
    for (let i = 0; i < 2; i++) expect(admitted(b.limits, k)).toBe(true);
    await a.sync.sync();
    await b.sync.sync();
    await a.sync.sync();
    expect(admitted(a.limits, k)).toBe(false);
    expect(admitted(b.limits, k)).toBe(false);
  });

  it('a budget spent on one replica stops the others, including one started later', async () => {
    const k: CompiledVirtualKey = {
      name: 'budget',
      keyHash: '2'.repeat(64),
      budget: { usd: 1, period: 'month' },
    };
    const a = await started([k]);
    a.limits.admit(k);
    a.limits.record(k, 5000, 1.25);
    await a.sync.sync();
    const late = await started([k]);
    expect(late.limits.spentUsd(k)).toBeCloseTo(1.25, 9);
    expect(admitted(late.limits, k)).toBe(false);
  });

  it('keeps enforcing locally while Redis is down and hands the usage over when it is back', async () => {
    const k: CompiledVirtualKey = {
      name: 'outage',
      keyHash: '3'.repeat(64),
      rpm: 1000,
      budget: { usd: 100, period: 'day' },
    };
    const a = await started([k]);
    await server.stop();
    await waitFor(() => !a.sync.up);
    a.limits.admit(k);
    a.limits.record(k, 40, 0.3);
    await a.sync.sync(); // not connected: nothing is taken
    expect(a.limits.spentUsd(k)).toBeCloseTo(0.3, 9);
    await server.restart(); // an empty Redis: only what was counted during the outage is there
    await waitFor(() => a.sync.up);
    await a.sync.sync();
    const probe = new Redis(server.url);
    try {
      const keys = await probe.keys('test:*');
      const minuteKey = keys.find((x) => x.startsWith(`test:rl:${'3'.repeat(32)}:`))!;
      expect(await probe.hgetall(minuteKey)).toEqual({ r: '1', t: '40' });
      const spendKey = keys.find((x) => x.startsWith(`test:spend:${'3'.repeat(32)}:`))!;
      expect(Number(await probe.get(spendKey))).toBe(0.3e9);
      expect(await probe.ttl(spendKey)).toBeGreaterThan(86_400);
      expect(await probe.pttl(minuteKey)).toBeGreaterThan(60_000);
    } finally {
      probe.disconnect();
    }
    expect(a.states).toEqual([true, false, true]);
  });

  it('a failed exchange is retried at the next sync, not lost', async () => {
    const k: CompiledVirtualKey = {
      name: 'retry',
      keyHash: '4'.repeat(64),
      budget: { usd: 100, period: 'month' },
    };
    const a = await started([k]);
    const probe = new Redis(server.url);
    try {
      // make the spend key the wrong type: INCRBY fails for this sync only
      const spendKey = `test:spend:${'4'.repeat(32)}:${new Date().toISOString().slice(0, 7)}`;
      await probe.del(spendKey);
      await probe.hset(spendKey, 'x', '1');
      a.limits.admit(k);
      a.limits.record(k, 1, 0.5);
      await a.sync.sync();
      expect(a.errors()).toBe(1);
      expect(a.limits.spentUsd(k)).toBeCloseTo(0.5, 9);
      await probe.del(spendKey);
      await a.sync.sync();
      expect(Number(await probe.get(spendKey))).toBe(0.5e9);
      // the request count Redis did take the first time is not added again
      let requests = 0;
      for (const minuteKey of await probe.keys(`test:rl:${'4'.repeat(32)}:*`)) {
        requests += Number(await probe.hget(minuteKey, 'r'));
      }
      expect(requests).toBe(1);
      expect(a.errors()).toBe(1);
    } finally {
      probe.disconnect();
    }
  });

  it('close() hands over what was counted since the last sync', async () => {
    const k: CompiledVirtualKey = {
      name: 'close',
      keyHash: '5'.repeat(64),
      budget: { usd: 100, period: 'month' },
    };
    const a = replica(server, [k]);
    await a.sync.start();
    await waitFor(() => a.sync.up);
    a.limits.admit(k);
    a.limits.record(k, 1, 0.25);
    await a.sync.close();
    const b = await started([k]);
    expect(b.limits.spentUsd(k)).toBeCloseTo(0.25, 9);
  });

  it('names Redis keys by a prefix of the key hash, never by the virtual key', async () => {
    const keyHash = createHash('sha256').update(SECRET_KEY).digest('hex');
    const k: CompiledVirtualKey = { name: 'named', keyHash, rpm: 10 };
    const a = await started([k]);
    a.limits.admit(k);
    await a.sync.sync();
    const probe = new Redis(server.url);
    try {
      const names = await probe.keys('*');
      expect(names.some((n) => n.startsWith(`test:rl:${keyHash.slice(0, 32)}:`))).toBe(true);
      for (const name of names) {
        expect(name).not.toContain(SECRET_KEY);
        expect(name).not.toContain(keyHash);
      }
    } finally {
      probe.disconnect();
    }
  });
});

describe.skipIf(!bin)('Redis with a password', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start(bin!, { password: PASSWORD });
  });
  afterAll(async () => server?.stop());

  it('authenticates with the password, and never logs it when it is wrong', async () => {
    const k: CompiledVirtualKey = { name: 'auth', keyHash: '6'.repeat(64), rpm: 10 };
    const good = replica(server, [k], { password: PASSWORD });
    await good.sync.start();
    await waitFor(() => good.sync.up);
    await good.sync.close();

    const { log, lines } = capture();
    const limits = new KeyLimits();
    const bad = new RedisLimitSync(limits, {
      url: `redis://:${encodeURIComponent(PASSWORD + 'x')}@127.0.0.1:${server.port}`,
      configuredKeys: () => [k],
      log,
    });
    await bad.start();
    await waitFor(() => lines.some((l) => l.includes('redis_unreachable')));
    await bad.close();
    expect(bad.up).toBe(false);
    const text = lines.join('\n');
    expect(text).toMatch(/WRONGPASS|invalid password|NOAUTH/i);
    expect(text).not.toContain(PASSWORD);
    expect(text).toContain(':***@127.0.0.1');
  });
});

describe('redactRedisUrl', () => {
  it('hides the password and keeps the rest', () => {
    expect(redactRedisUrl('redis://user:secret@cache:6380/2')).toBe('redis://user:***@cache:6380/2');
    expect(redactRedisUrl('rediss://cache:6380')).toBe('rediss://cache:6380');
    expect(redactRedisUrl('not a url secret')).not.toContain('secret');
  });
});
