// tierflow inject: prints manifests with the TierFlow sidecars injected, by the webhook's own code.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { injectObject, secretsByNamespace } from '../k8s/inject-manifests.js';
import { injectorConfigFromValues, loadChartValues } from '../k8s/injector-values.js';

const HELP = `usage: tierflow inject -f FILE [--objects FILE]... [--values FILE]... [options] > injected.yaml

Prints the objects of FILE (multi-document YAML; "-" reads stdin) with the TierFlow sidecars
injected into Pods and the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets,
Jobs and CronJobs, exactly as the admission webhook would (the same code). Pods are injected when
annotated tierflow.dev/inject: "true". Other objects are printed unchanged.

options:
  -f, --filename FILE      the manifests to inject
      --objects FILE       LLMProvider and VirtualKey objects (kubectl-style YAML): the Secrets
                           they reference are mounted into the tierflow container; repeatable
      --values FILE        Helm values of your TierFlow release (images, UIDs, ports); default the
                           chart's values.yaml; repeatable, later files win
  -n, --namespace NS       namespace of objects that name none (default "default")
      --namespace-enabled  inject every pod not opted out, as in a namespace labelled
                           tierflow.dev/inject=enabled
  -h, --help

What was injected, and the webhook's warnings, go to stderr.
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      filename: { type: 'string', short: 'f' },
      objects: { type: 'string', multiple: true },
      values: { type: 'string', multiple: true },
      namespace: { type: 'string', short: 'n' },
      'namespace-enabled': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!values.filename) {
    process.stderr.write(`tierflow inject: -f FILE is required\n\n${HELP}`);
    return 2;
  }
  const readDocs = (file: string): unknown[] => {
    const text = readFileSync(file === '-' ? 0 : file, 'utf8');
    // kubectl and helm read YAML 1.1: `on`/`off`/`yes`/`no` are booleans, 0644 is octal.
    const docs = parseAllDocuments(text, { version: '1.1' });
    const errors = docs.flatMap((d) => d.errors);
    if (errors.length) throw new Error(`${file}: ${errors[0]!.message}`);
    return docs.map((d) => d.toJS() as unknown).filter((d) => d !== null && d !== undefined);
  };
  try {
    const namespace = values.namespace ?? 'default';
    const { values: chartValues, appVersion } = loadChartValues(values.values ?? []);
    const config = injectorConfigFromValues(chartValues, appVersion);
    const objects = (values.objects ?? []).flatMap(readDocs) as Record<string, unknown>[];
    const secrets = secretsByNamespace(objects, namespace);
    const out: string[] = [];
    for (const doc of readDocs(values.filename)) {
      const r = injectObject(doc, {
        config,
        namespace,
        secrets,
        ...(values['namespace-enabled'] ? { namespaceEnabled: true } : {}),
      });
      if (r.note) process.stderr.write(`${r.note}\n`);
      for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      // YAML 1.1 output: strings such as "off" or "0644" stay quoted for kubectl.
      out.push(stringify(r.object, { version: '1.1', lineWidth: 0 }));
    }
    process.stdout.write(out.join('---\n'));
    return 0;
  } catch (err) {
    process.stderr.write(`tierflow inject: ${(err as Error).message}\n`);
    return 1;
  }
}
