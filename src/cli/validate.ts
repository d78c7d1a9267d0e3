// tierflow validate [FILE]: schema and reference checks, with field paths and line numbers.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatIssue, loadServableConfigFile } from '../config/load.js';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' }, 'secrets-dir': { type: 'string' } },
  });
  if (values.help) {
    process.stdout.write(
      'usage: tierflow validate [FILE]   (default: $TIERFLOW_CONFIG or ./tierflow.yaml)\n',
    );
    return 0;
  }
  const file = resolve(positionals[0] ?? process.env.TIERFLOW_CONFIG ?? 'tierflow.yaml');
  const r = loadServableConfigFile(file, { secretsDir: values['secrets-dir'] });
  for (const issue of r.issues) process.stderr.write(formatIssue(issue, file) + '\n');
  if (!r.config) {
    process.stderr.write(`${file}: invalid\n`);
    return 1;
  }
  const c = r.config;
  const lines = [`${file}: valid (revision ${c.revision})`];
  for (const p of c.providers.values()) {
    lines.push(
      `  provider ${p.name} (${p.type}) ${p.enabled ? 'enabled' : 'disabled'}: ${p.models.map((m) => `${m.name}[${m.tier}]`).join(', ')}`,
    );
    const embeddings = [...c.embeddingModels.values()].filter((m) => m.provider === p);
    if (embeddings.length) lines.push(`    embeddings: ${embeddings.map((m) => m.name).join(', ')}`);
  }
  for (const pol of c.policies.values()) {
    lines.push(`  policy ${pol.name} [${pol.virtualModels.join(', ')}]:`);
    for (const t of pol.tiers)
      lines.push(
        `    ${t.name} (score <= ${t.maxScore}): ${t.candidates.map((m) => m.id).join(', ') || '(no usable model)'}`,
      );
  }
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
