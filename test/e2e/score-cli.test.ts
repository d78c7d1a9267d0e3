// `tierflow score`: {"id","messages"} JSONL in -> {"id","score"} JSONL out, one per input line, in order.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/score.js';
import { classify } from '../../src/core/classifier/index.js';
import type { ChatCompletionRequest } from '../../src/core/openai.js';

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

async function score(input: string, argv: string[] = []) {
  const stdin = new PassThrough();
  const stdout = new Sink();
  const stderr = new Sink();
  stdin.end(input);
  const code = await run(argv, { stdin, stdout, stderr });
  const lines = code === 0 || code === 1 ? stdout.text.split('\n').filter((l) => l.startsWith('{')) : [];
  return {
    code,
    out: lines.map((l) => JSON.parse(l) as { id: unknown; score: number; reasons?: string[] }),
    raw: stdout.text,
    err: stderr.text,
  };
}

const line = (id: unknown, content: string, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ id, messages: [{ role: 'user', content }], ...extra });

describe('tierflow score', () => {
  it('prints one {"id","score"} line per input line, in input order, with the production classifier', async () => {
    const prompts = [
      'hi',
      'Prove that sqrt(2) is irrational.',
      'Write a Python function that merges two sorted lists.',
      'What is 2+2?',
    ];
    const ids: unknown[] = ['a', 7, 'c-3', { nested: true }];
    const input = prompts.map((p, i) => line(ids[i], p)).join('\n') + '\n';
    const r = await score(input);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out.map((o) => o.id)).toEqual(ids);
    for (const [i, o] of r.out.entries()) {
      expect(Object.keys(o).sort()).toEqual(['id', 'score']);
      const req: ChatCompletionRequest = {
        model: 'auto',
        messages: [{ role: 'user', content: prompts[i]! }],
      };
      expect(o.score).toBe(classify(req).score);
    }
  });

  it('takes other request fields (tools) into account, like the router', async () => {
    const tools = [{ type: 'function', function: { name: 'search' } }];
    const r = await score(
      line(1, 'Tell me about volcanoes.') + '\n' + line(2, 'Tell me about volcanoes.', { tools }) + '\n',
    );
    expect(r.out[1]!.score).toBeGreaterThan(r.out[0]!.score);
  });

  it('reports bad lines with their line number, scores the others, and exits 1 at the end', async () => {
    const input = [
      line('first', 'hello'),
      '{"id": "broken", "messages": [',
      '',
      JSON.stringify({ messages: [{ role: 'user', content: 'no id' }] }),
      JSON.stringify({ id: 'no-messages' }),
      '[1, 2, 3]',
      line('last', 'Explain quicksort.'),
    ].join('\n');
    const r = await score(input); // no trailing newline on purpose
    expect(r.code).toBe(1);
    expect(r.out.map((o) => o.id)).toEqual(['first', 'last']);
    expect(r.err).toMatch(/line 2: invalid JSON/);
    expect(r.err).toMatch(/line 4: missing "id"/);
    expect(r.err).toMatch(/line 5: missing "messages" array/);
    expect(r.err).toMatch(/line 6: expected a JSON object/);
    expect(r.err).not.toMatch(/line 3/); // blank lines are skipped silently
    expect(r.err).toMatch(/4 of 6 lines rejected/);
  });

  it('handles CRLF input, empty input and large batches', async () => {
    const crlf = await score(line(1, 'a') + '\r\n' + line(2, 'b') + '\r\n');
    expect(crlf.code).toBe(0);
    expect(crlf.out.map((o) => o.id)).toEqual([1, 2]);
    const empty = await score('');
    expect(empty.code).toBe(0);
    expect(empty.raw).toBe('');
    const many = Array.from({ length: 3000 }, (_, i) =>
      line(i, `Question number ${i}: what is ${i} times ${i + 1}?`),
    ).join('\n');
    const big = await score(many);
    expect(big.code).toBe(0);
    expect(big.out).toHaveLength(3000);
    expect(big.out.every((o, i) => o.id === i && o.score >= 0 && o.score <= 1)).toBe(true);
  });

  it('--reasons adds the reasons; --help documents the contract; unknown flags fail', async () => {
    const r = await score(line('x', 'Write a Rust function that parses JSON.') + '\n', ['--reasons']);
    expect(r.out[0]!.reasons!.length).toBeGreaterThan(0);
    const help = await score('', ['--help']);
    expect(help.code).toBe(0);
    expect(help.raw).toMatch(/usage: tierflow score/);
    expect(help.raw).toMatch(/line number/);
    // main.ts turns this into a one-line error and exit code 2 (test/e2e/cli-arguments.test.ts).
    await expect(score('', ['--nope'])).rejects.toMatchObject({ code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
  });

  it('works as a process: `tierflow score` from the CLI entry point', () => {
    const root = resolve(import.meta.dirname, '../..');
    // Run the TypeScript sources directly: Node 24 strips types; this hook maps ./x.js imports to ./x.ts.
    const hook =
      'data:text/javascript,import{registerHooks}from"node:module";registerHooks({resolve(s,c,n){try{return n(s,c)}catch(e){if(s.startsWith(".")&&s.endsWith(".js"))return n(s.slice(0,-3)+".ts",c);throw e}}})';
    const input =
      [line('p1', 'hi'), 'oops', line('p2', 'Derive the quadratic formula step by step.')].join('\n') + '\n';
    const r = spawnSync(process.execPath, ['--import', hook, 'src/cli/main.ts', 'score'], {
      cwd: root,
      input,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    const out = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; score: number });
    expect(out.map((o) => o.id)).toEqual(['p1', 'p2']);
    expect(out[1]!.score).toBeGreaterThan(out[0]!.score);
    expect(r.stderr).toMatch(/line 2: invalid JSON/);
  });
});
