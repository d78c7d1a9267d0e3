// `npm run bench`: every benchmark in sequence (build first: they measure dist/), then one table
// with every figure, its reference (the physical limit: a no-op ext_proc server, a bare Node
// proxy; a peer where it runs) and its goal.
//   npm run bench [-- --quick] [-- --readme]
// --quick   shorter phases and fewer rounds (about a minute and a half in all)
// --readme  also writes the table into README.md's Performance section (between the markers)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Figure } from './lib.ts';

const benches = [
  'bench/decision.ts',
  'bench/translate.ts',
  'bench/classifier.ts',
  'bench/gateway.ts',
  'bench/extproc.ts',
];
const USAGE = `npm run bench [-- --quick] [-- --readme]   (every benchmark, then one table)
  --quick   shorter phases and fewer rounds (about a minute and a half in all)
  --readme  also write the table into README.md's Performance section
Each benchmark also runs alone after \`npm run build\`: node_modules/.bin/node ${benches.join(' | ')} [--quick]
(bench/extproc.ts --help lists its own options)
`;
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const unknown = args.filter((a) => a !== '--quick' && a !== '--readme');
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown option ${unknown.join(' ')}\n\n${USAGE}`);
  process.exit(2);
}
const readme = args.includes('--readme');
const benchArgs = args.filter((a) => a !== '--readme');
const figuresFile = join(mkdtempSync(join(tmpdir(), 'tierflow-bench-')), 'figures.jsonl');
writeFileSync(figuresFile, '');

const loadBefore = os.loadavg()[0]!;
const started = Date.now();
let failed = 0;
for (const b of benches) {
  if (!existsSync(b)) continue;
  console.log(`\n== ${b}`);
  const r = spawnSync(process.execPath, [b, ...benchArgs], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_FIGURES: figuresFile },
  });
  if (r.status !== 0) failed++;
}

const figures = readFileSync(figuresFile, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as Figure);
const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
const machine =
  `${os.cpus().length} x ${cpu}, Node ${process.versions.node}, load average ${loadBefore.toFixed(1)} ` +
  `at the start and ${os.loadavg()[0]!.toFixed(1)} at the end, ${benchArgs.includes('--quick') ? '`--quick`, ' : ''}` +
  `${Math.round((Date.now() - started) / 1000)} s` +
  (loadBefore > os.cpus().length
    ? ' (more runnable work than cores: absolute figures and tails are inflated, ratios hold better)'
    : '');
const table = [
  '| plane | figure | TierFlow | reference | ratio | goal | met |',
  '|---|---|---|---|---|---|---|',
  ...figures.map(
    (f) =>
      `| ${f.plane} | ${f.what} | ${f.value} | ${f.reference ?? ''} | ${f.ratio === undefined ? '' : f.ratio.toFixed(2) + 'x'} | ${f.goal ?? ''} | ${f.ok === undefined ? '' : f.ok ? 'yes' : '**no**'} |`,
  ),
].join('\n');
console.log(`\n== summary (${machine})\n\n${table}\n`);

if (readme) {
  const BEGIN = '<!-- bench:begin -->';
  const END = '<!-- bench:end -->';
  const text = readFileSync('README.md', 'utf8');
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a === -1 || b < a) {
    console.error(`README.md has no ${BEGIN} ... ${END} section`);
    failed++;
  } else {
    const section = `${BEGIN}\nMeasured by \`npm run bench${benchArgs.length ? ' -- ' + benchArgs.join(' ') : ''}\` on ${machine}.\n\n${table}\n${END}`;
    writeFileSync('README.md', text.slice(0, a) + section + text.slice(b + END.length));
    console.log('README.md Performance section updated.');
  }
}
process.exit(failed ? 1 : 0);
