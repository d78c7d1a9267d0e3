// `npm run bench`: every benchmark in sequence (build first: they measure dist/).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const benches = [
  'bench/decision.ts',
  'bench/translate.ts',
  'bench/classifier.ts',
  'bench/gateway.ts',
  'bench/extproc.ts',
];
let failed = 0;
for (const b of benches) {
  if (!existsSync(b)) continue;
  console.log(`\n== ${b}`);
  const r = spawnSync(process.execPath, [b, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
