// tierflow explain: score one request and show what the default policy would do with it.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type ClassificationDetail, type Classifier, SHIPPED } from '../core/classifier/index.js';
import type { ChatCompletionRequest, ChatMessage } from '../core/openai.js';

const USAGE = `usage: tierflow explain [options] PROMPT...
       tierflow explain [options] --file REQUEST.json    ("-" reads stdin)

Shows the complexity score of one request, the tier and model the policy would pick, and the
features that moved the score most.

  PROMPT               the text of a single user message (several words are joined by spaces)
  -f, --file FILE      a JSON file holding a chat-completions request ({"messages": [...], ...})
                       or just a messages array
  -c, --config FILE    config that decides tier and model (default: $TIERFLOW_CONFIG or ./tierflow.yaml)
  -m, --model NAME     virtual model whose policy decides (default: the request's model, else "auto")
  -r, --router FILE    score with a router written by \`tierflow train\` (default: the policy's
                       classifier.modelFile, else the shipped model)
  -n, --top N          features to list (default 8)
      --json           print the whole explanation as JSON
  -h, --help           show this help
`;

export interface Decision {
  /** Config file used. */
  config: string;
  policy?: string;
  tier?: string;
  /** provider/model of the primary candidate, then the fallbacks. */
  model?: string;
  fallbacks?: string[];
  /** The tier bounds, e.g. "lightweight <= 0.5 < flagship". */
  thresholds?: string;
  note?: string;
  error?: string;
}

/**
 * The tier and model the policy of `modelName` picks for this score, as the router would with
 * healthy providers and the configured maxScore thresholds (a policy with flagshipShare uses a
 * live threshold in the running server; here the configured maxScore stands in for it).
 */
export async function describeDecision(
  req: ChatCompletionRequest,
  configPath: string,
  modelName: string,
  explicit?: Classifier,
): Promise<{ detail: ClassificationDetail; decision: Decision }> {
  const [
    { loadConfigFile, formatIssue },
    { parseChatRequest },
    { selectCandidates, tierIndexForScore },
    { HealthRegistry },
  ] = await Promise.all([
    import('../config/load.js'),
    import('../core/parse.js'),
    import('../core/select.js'),
    import('../core/health/registry.js'),
  ]);
  const loaded = loadConfigFile(configPath);
  if (!loaded.config) {
    const first = loaded.issues.find((i) => i.severity === 'error') ?? loaded.issues[0];
    return {
      detail: (explicit ?? SHIPPED).explain(req),
      decision: { config: configPath, error: first ? formatIssue(first, configPath) : 'invalid config' },
    };
  }
  const config = loaded.config;
  const policy = config.virtualModels.get(modelName);
  if (!policy) {
    const names = [...config.virtualModels.keys()].join(', ') || 'none';
    return {
      detail: (explicit ?? SHIPPED).explain(req),
      decision: {
        config: configPath,
        error: `'${modelName}' is not a virtual model of this config (virtual models: ${names})`,
      },
    };
  }
  // The classifier the running server would use for this policy, unless --router overrides it.
  const detail = (explicit ?? policy.classifier ?? SHIPPED).explain(req);
  const score = detail.score;
  const thresholds = policy.tiers
    .map((t, i) => (i < policy.tiers.length - 1 ? `${t.name} <= ${t.maxScore} <` : t.name))
    .join(' ');
  const tierIndex = tierIndexForScore(policy, score);
  const decision: Decision = {
    config: configPath,
    policy: policy.name,
    tier: policy.tiers[tierIndex]!.name,
    thresholds,
  };
  if (policy.spendTarget) {
    const t = policy.spendTarget;
    const n = policy.tiers.length;
    const low = n > 2 ? policy.tiers[n - 3]!.maxScore : 0;
    decision.note = `policy targets $${t.usd} per ${t.period}: the running server moves the last threshold between ${low} and ${policy.tiers[n - 2]!.maxScore} to meet it (target vs projection: tierflow_policy_spend_target_usd / _projected_usd); the configured maxScore is used here`;
  }
  if (policy.flagshipShare !== undefined) {
    decision.note = `policy targets ${policy.flagshipShare * 100}% flagship calls: the running server moves the last threshold with the score distribution; the configured maxScore is used here`;
  }
  try {
    const parsed = parseChatRequest(JSON.stringify({ ...req, model: modelName }));
    const { candidates } = selectCandidates(policy, tierIndex, parsed, new HealthRegistry());
    decision.model = candidates[0]!.id;
    decision.fallbacks = candidates.slice(1).map((m) => m.id);
  } catch (err) {
    decision.error = (err as Error).message;
  }
  return { detail, decision };
}

function readRequest(file: string): ChatCompletionRequest {
  const text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(resolve(file), 'utf8');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: invalid JSON (${(err as Error).message})`, { cause: err });
  }
  if (Array.isArray(data)) return { model: 'auto', messages: data as ChatMessage[] };
  if (data && typeof data === 'object' && Array.isArray((data as { messages?: unknown }).messages)) {
    const req = data as ChatCompletionRequest;
    return { ...req, model: typeof req.model === 'string' ? req.model : 'auto' };
  }
  throw new Error(
    `${file}: expected a chat-completions request with a "messages" array, or a messages array`,
  );
}

function formatText(d: ClassificationDetail, decision: Decision, top: number): string {
  const lines: string[] = [];
  lines.push(
    `score     ${d.score.toFixed(3)}   (logit ${d.logit.toFixed(3)}; ${d.model.name} ${d.model.version})`,
  );
  if (decision.error && !decision.tier) {
    lines.push(`tier      ? (${decision.error})`);
  } else {
    lines.push(`tier      ${decision.tier}   (policy ${decision.policy}: ${decision.thresholds})`);
    if (decision.model) {
      const fb = decision.fallbacks?.length ? `   (fallbacks: ${decision.fallbacks.join(', ')})` : '';
      lines.push(`model     ${decision.model}${fb}`);
    } else {
      lines.push(`model     ? (${decision.error ?? 'no candidate'})`);
    }
    if (decision.note) lines.push(`note      ${decision.note}`);
  }
  lines.push(`reasons   ${d.reasons.join(', ') || '-'}`);
  const excerpt = JSON.stringify(
    d.task.excerpt.length > 120 ? d.task.excerpt.slice(0, 117) + '...' : d.task.excerpt,
  );
  lines.push(
    `task      message #${d.task.message}, ${d.task.examples} worked example(s) before it: ${excerpt}`,
  );
  lines.push('features  (value, weight, contribution to the logit; largest first)');
  const shown = d.features.filter((f) => f.contribution !== 0).slice(0, top);
  const width = Math.max(...shown.map((f) => f.name.length), 8);
  for (const f of shown) {
    const sign = f.contribution >= 0 ? '+' : '-';
    lines.push(
      `  ${sign} ${f.name.padEnd(width)}  ${f.value.toFixed(3).padStart(8)}  ${f.weight.toFixed(3).padStart(7)}  ${(f.contribution >= 0 ? '+' : '') + f.contribution.toFixed(3)}`,
    );
  }
  if (shown.length === 0) lines.push('  (no feature moved the score)');
  if (d.vocabulary.length > 0) {
    const words = d.vocabulary.map((v) => `${v.word} ${v.weight >= 0 ? '+' : ''}${v.weight.toFixed(3)}`);
    lines.push(`words     (learned vocabulary_difficulty weights) ${words.join(', ')}`);
  }
  return lines.join('\n') + '\n';
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      file: { type: 'string', short: 'f' },
      config: { type: 'string', short: 'c' },
      model: { type: 'string', short: 'm' },
      router: { type: 'string', short: 'r' },
      top: { type: 'string', short: 'n' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const top = values.top === undefined ? 8 : Number(values.top);
  if (!Number.isInteger(top) || top < 0) {
    process.stderr.write('tierflow explain: --top must be a non-negative integer\n');
    return 2;
  }
  if (values.file !== undefined && positionals.length > 0) {
    process.stderr.write('tierflow explain: give either a prompt or --file, not both\n');
    return 2;
  }
  let req: ChatCompletionRequest;
  try {
    if (values.file !== undefined) req = readRequest(values.file);
    else if (positionals.length === 1 && positionals[0] === '-') req = readRequest('-');
    else if (positionals.length > 0)
      req = { model: 'auto', messages: [{ role: 'user', content: positionals.join(' ') }] };
    else {
      process.stderr.write(`tierflow explain: nothing to explain\n\n${USAGE}`);
      return 2;
    }
  } catch (err) {
    process.stderr.write(`tierflow explain: ${(err as Error).message}\n`);
    return 1;
  }

  let explicit: Classifier | undefined;
  if (values.router !== undefined) {
    try {
      const { readClassifierFile } = await import('../config/classifier-file.js');
      explicit = readClassifierFile(resolve(values.router));
    } catch (err) {
      process.stderr.write(`tierflow explain: ${(err as Error).message}\n`);
      return 1;
    }
  }
  const configPath = resolve(values.config ?? process.env.TIERFLOW_CONFIG ?? 'tierflow.yaml');
  const modelName = values.model ?? (req.model && req.model.length > 0 ? req.model : 'auto');
  const { detail, decision } = await describeDecision(req, configPath, modelName, explicit);
  if (values.json) {
    process.stdout.write(JSON.stringify({ ...detail, decision }, null, 2) + '\n');
  } else {
    process.stdout.write(formatText(detail, decision, top));
  }
  // A config given explicitly must load; the default one may be absent (the score still shows).
  return decision.error && !decision.tier && values.config !== undefined ? 1 : 0;
}
