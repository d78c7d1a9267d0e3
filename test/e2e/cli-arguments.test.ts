// A wrong command line gets the same answer from every command: what is wrong, where to look, exit 2.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const COMMANDS = [
  'serve',
  'sidecar',
  'controller',
  'envoy-config',
  'inject',
  'score',
  'explain',
  'report',
  'train',
  'validate',
];

function tierflow(args: string[]) {
  return spawnSync(process.execPath, ['bin/tierflow.js', ...args], { encoding: 'utf8', timeout: 20_000 });
}

describe('tierflow <command> with a bad command line', () => {
  it.each(COMMANDS)(
    '%s: an unknown option is named on stderr with exit code 2, nothing started',
    (command) => {
      const r = tierflow([command, '--no-such-option']);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      const [first, second, ...rest] = r.stderr.split('\n');
      expect(first).toMatch(new RegExp(`^tierflow ${command}: Unknown option '--no-such-option'`));
      expect(second).toBe(`Run \`tierflow ${command} --help\` for its options.`);
      expect(rest).toEqual(['']);
    },
  );

  it('a string option without its value says so', () => {
    const r = tierflow(['score', '--model']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^tierflow score: Option '--model <value>' argument missing\n/);
  });

  it('a stray argument to a command that takes none is refused', () => {
    const r = tierflow(['serve', 'extra']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^tierflow serve: Unexpected argument 'extra'/);
  });
});
