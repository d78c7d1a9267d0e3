// `tierflow <command>`: each command lives in its own module, loaded on demand.
type CommandModule = { run(argv: string[]): Promise<number | void> };

const commands: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  serve: { summary: 'run the standalone OpenAI-compatible gateway', load: () => import('./serve.js') },
  sidecar: {
    summary: 'run the Envoy ext_proc server (the Kubernetes sidecar)',
    load: () => import('./sidecar.js'),
  },
  controller: {
    summary: 'run the Kubernetes controller (CRD status, admission webhook)',
    load: () => import('./controller.js'),
  },
  'envoy-config': {
    summary: 'print the Envoy bootstrap YAML for the sidecar',
    load: () => import('./envoy-config.js'),
  },
  inject: {
    summary: 'print manifests with the TierFlow sidecars injected (as the webhook would)',
    load: () => import('./inject.js'),
  },
  score: {
    summary: 'score JSONL requests from stdin with the production classifier',
    load: () => import('./score.js'),
  },
  explain: {
    summary: 'show the score, tier, model and top features for one request',
    load: () => import('./explain.js'),
  },
  report: {
    summary: 'summarize spend, savings, models and failovers from /metrics or Prometheus',
    load: () => import('./report.js'),
  },
  train: {
    summary: 'fit a router to your own labelled outcomes (JSONL), with a cross-validated report',
    load: () => import('./train.js'),
  },
  validate: {
    summary: 'check a config file and print what it compiles to',
    load: () => import('./validate.js'),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'usage: tierflow <command> [options]',
    '',
    'commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `tierflow <command> --help` for the options of a command.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version') {
    process.stdout.write('tierflow 0.1.0\n');
    return 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`tierflow: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  const mod = await command.load();
  try {
    return (await mod.run(rest)) ?? 0;
  } catch (err) {
    if (!isCommandLineError(err)) throw err;
    process.stderr.write(
      `tierflow ${name}: ${err.message}\nRun \`tierflow ${name} --help\` for its options.\n`,
    );
    return 2;
  }
}

/** An unknown option, a missing option value or a stray argument, as node:util parseArgs reports them. */
function isCommandLineError(err: unknown): err is Error {
  return (
    err instanceof Error &&
    (err as { code?: unknown }).code?.toString().startsWith('ERR_PARSE_ARGS_') === true
  );
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`tierflow: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
