import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/observe/log.js';

describe('default log writer', () => {
  afterEach(() => vi.restoreAllMocks());

  it('batches the stdout lines logged within 20 ms into one write, in order', async () => {
    const writes: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    const log = createLogger('info');
    log.info('first', { n: 1 });
    log.warn('second', { n: 2 });
    log.debug('below the level');
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([]); // not even on the next turn
    await new Promise((r) => setTimeout(r, 30));
    expect(writes).toHaveLength(1);
    const lines = writes[0]!
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; level: string });
    expect(lines.map((l) => [l.msg, l.level])).toEqual([
      ['first', 'info'],
      ['second', 'warn'],
    ]);
  });

  it('writes errors to stderr at once', () => {
    const err: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      err.push(String(chunk));
      return true;
    });
    createLogger('info').error('boom', { code: 'x' });
    expect(err).toHaveLength(1);
    expect(JSON.parse(err[0]!)).toMatchObject({ level: 'error', msg: 'boom', code: 'x' });
  });

  it('flushes a large batch without waiting for the turn to end', async () => {
    const writes: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    const log = createLogger('info');
    for (let i = 0; i < 200; i++) log.info('line', { pad: 'x'.repeat(500), i });
    expect(writes.length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 30)); // the rest, still into the mock
    expect(writes.join('').trimEnd().split('\n')).toHaveLength(200);
  });
});

describe('log lines', () => {
  it('are the head keys then the fields, as one merged object would serialize', () => {
    const lines: string[] = [];
    const log = createLogger('info', {}, (line) => lines.push(line));
    log.info('request', { requestId: 'r1', status: 200, skipped: undefined, attempts: ['a:success'] });
    log.info('no fields');
    log.info('empty', {});
    log.info('a field named msg wins', { msg: 'mine', n: 1 });
    createLogger('info', { component: 'x' }, (line) => lines.push(line)).info('child', { n: 2 });
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(Object.keys(parsed[0]!)).toEqual(['ts', 'level', 'msg', 'requestId', 'status', 'attempts']);
    expect(parsed[0]).toMatchObject({ level: 'info', msg: 'request', status: 200, attempts: ['a:success'] });
    expect(new Date(parsed[0]!.ts as string).toISOString()).toBe(parsed[0]!.ts);
    expect(Object.keys(parsed[1]!)).toEqual(['ts', 'level', 'msg']);
    expect(Object.keys(parsed[2]!)).toEqual(['ts', 'level', 'msg']);
    expect(parsed[3]).toMatchObject({ msg: 'mine', n: 1 });
    expect(parsed[4]).toMatchObject({ msg: 'child', component: 'x', n: 2 });
  });
});

describe('log lines of a logger with base fields', () => {
  it('equal the merged object serialized, whatever the fields', () => {
    const base = { component: 'sidecar', n: 0, nested: { a: [1, 'two'] }, gone: undefined };
    const cases: Array<Record<string, unknown> | undefined> = [
      undefined,
      {},
      { requestId: 'r1', status: 200, skipped: undefined, attempts: ['a:success'] },
      { component: 'override' }, // a base field replaced keeps its place
      { n: undefined }, // and a base field set to undefined disappears
      { gone: 'back' },
      { msg: 'a field named msg wins' },
      { quote: 'a "quoted" \\ value\n' },
      { toJSON: () => 'not an object' },
    ];
    for (const fields of cases) {
      const lines: string[] = [];
      createLogger('info', base, (line) => lines.push(line)).info('child', fields);
      const ts = (JSON.parse(lines[0]!) as { ts?: unknown }).ts;
      expect(lines[0]).toBe(JSON.stringify({ ts, level: 'info', msg: 'child', ...base, ...fields }));
    }
  });

  it('keep the head keys of the base when it has them (the general way)', () => {
    const lines: string[] = [];
    createLogger('info', { level: 'custom' }, (line) => lines.push(line)).info('m', { a: 1 });
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'custom', msg: 'm', a: 1 });
  });
});

describe('enabled', () => {
  it('says whether a level is written, for the logger and its children', () => {
    const log = createLogger('warn', {}, () => {});
    expect(log.enabled?.('info')).toBe(false);
    expect(log.enabled?.('warn')).toBe(true);
    expect(log.child({ a: 1 }).enabled?.('error')).toBe(true);
    expect(createLogger('debug', {}, () => {}).enabled?.('debug')).toBe(true);
  });
});
