// The Prometheus alerting rules shipped as a plain rules file (observability/prometheus/) and as
// the chart's PrometheusRule. Thresholds are parameters: the plain file gets the defaults, the
// chart gets Helm expressions reading `metrics.prometheusRule.thresholds` (like the Envoy
// bootstrap in src/k8s/chart-files.ts, one source for both). Unit tests of the rules:
// observability/prometheus/tierflow-alerts.test.yaml (promtool test rules).
import { stringify } from 'yaml';

export const THRESHOLDS = {
  /** Share of a provider's attempts failing for a failover reason. */
  providerErrorRatio: 0.2,
  /** A virtual key's spend as a share of its budget. */
  budgetRatio: 0.9,
  /** How far (absolute) a policy's flagship share may sit above its target. */
  flagshipShareExcess: 0.15,
  /** Time to first token the SLO promises (a bucket boundary of the histogram). */
  ttftSeconds: 4,
  /** Share of attempts that must meet ttftSeconds. */
  ttftObjective: 0.95,
} as const;

export type Threshold = keyof typeof THRESHOLDS;

/** Bucket boundaries of tierflow_time_to_first_token_seconds (src/observe/metrics.ts) usable as ttftSeconds. */
export const TTFT_BUCKETS = [0.5, 1, 2, 4, 8, 15, 30, 60] as const;

const t = (name: Threshold) => `@@${name}@@`;

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: 'warning' | 'critical' };
  annotations: { summary: string; description: string; runbook: string };
}

const rule = (
  alert: string,
  expr: string,
  forDuration: string,
  severity: 'warning' | 'critical',
  summary: string,
  description: string,
): Rule => ({
  alert,
  expr,
  for: forDuration,
  labels: { severity },
  annotations: { summary, description, runbook: `docs/observability.md#${alert.toLowerCase()}` },
});

const FLAGSHIP_SHARE_1H =
  'sum by (namespace, policy) (rate(tierflow_requests_total{mode="auto"}[1h]) * on (policy, tier) group_left () group by (policy, tier) (tierflow_policy_flagship_tier))' +
  '\n  / sum by (namespace, policy) (rate(tierflow_requests_total{mode="auto"}[1h]))';

export function alertGroups(): { groups: { name: string; rules: Rule[] }[] } {
  return {
    groups: [
      {
        name: 'tierflow.providers',
        rules: [
          rule(
            'TierFlowProviderErrorRate',
            `sum by (namespace, provider) (rate(tierflow_upstream_attempts_total{outcome!~"success|client_error"}[5m]))\n  / sum by (namespace, provider) (rate(tierflow_upstream_attempts_total[5m]))\n  > ${t('providerErrorRatio')}`,
            '10m',
            'warning',
            'Provider {{ $labels.provider }} fails {{ $value | humanizePercentage }} of its attempts',
            'Attempts to {{ $labels.provider }} end in 429, 5xx, timeouts, resets or broken streams; TierFlow fails over, which costs latency and may move traffic to pricier models.',
          ),
          rule(
            'TierFlowTierDown',
            'count by (namespace, tier) (min by (namespace, job, instance, tier) (tierflow_circuit_breaker_state) == 2)',
            '2m',
            'critical',
            'Every model of tier {{ $labels.tier }} has its circuit breaker open on {{ $value }} instance(s)',
            'No provider of tier {{ $labels.tier }} takes traffic: requests of that tier fail over to other tiers (escalate) or fail.',
          ),
          rule(
            'TierFlowCircuitBreakerOpen',
            // never closed in 15 minutes, for a series at least that old (a breaker opening right after
            // start has no history to judge by)
            'max by (namespace, provider, model) (\n  min_over_time(tierflow_circuit_breaker_state[15m]) >= 1 and tierflow_circuit_breaker_state offset 15m\n)',
            '0m',
            'warning',
            'Circuit breaker of {{ $labels.provider }}/{{ $labels.model }} has not closed for 15 minutes',
            'The model is skipped (open) or only probed (half-open) on at least one instance; check the provider status and its credentials.',
          ),
        ],
      },
      {
        name: 'tierflow.routing',
        rules: [
          rule(
            'TierFlowFlagshipShareAboveTarget',
            `(${FLAGSHIP_SHARE_1H})\n  - on (namespace, policy) max by (namespace, policy) (tierflow_policy_flagship_share_target)\n  > ${t('flagshipShareExcess')}`,
            '30m',
            'warning',
            'Policy {{ $labels.policy }} sends {{ $value | humanizePercentage }} more traffic to its flagship than targeted',
            'Savings are lost: stickiness, capability filters (tools, vision, context) or failover escalation push requests above their tier, or the traffic changed.',
          ),
          rule(
            'TierFlowTimeToFirstTokenSLO',
            `1 - (\n  sum by (namespace, provider, model) (rate(tierflow_time_to_first_token_seconds_bucket{le="${t('ttftSeconds')}"}[10m]))\n  / sum by (namespace, provider, model) (rate(tierflow_time_to_first_token_seconds_count[10m]))\n) > 1 - ${t('ttftObjective')}`,
            '10m',
            'warning',
            '{{ $labels.provider }}/{{ $labels.model }}: {{ $value | humanizePercentage }} of first tokens slower than the SLO',
            `Fewer attempts than the objective get their first token within ${t('ttftSeconds')}s. Latency-aware ordering moves traffic away when alternatives exist.`,
          ),
        ],
      },
      {
        name: 'tierflow.keys',
        rules: [
          rule(
            'TierFlowBudgetNearlyExhausted',
            `max by (namespace, key) (tierflow_virtual_key_spend_usd / tierflow_virtual_key_budget_usd) > ${t('budgetRatio')}`,
            '5m',
            'warning',
            'Virtual key {{ $labels.key }} has spent {{ $value | humanizePercentage }} of its budget',
            'Requests with this key get 429 once the budget is spent, until the period (day or month) turns over.',
          ),
        ],
      },
      {
        name: 'tierflow.operations',
        rules: [
          rule(
            'TierFlowConfigRejected',
            'tierflow_config_last_reload_successful == 0',
            '1m',
            'warning',
            '{{ $labels.instance }} rejected its latest configuration',
            'The last good configuration keeps serving; the log line "config reload rejected" names the field and line. Fix and save again.',
          ),
          rule(
            'TierFlowSharedStateDown',
            'tierflow_shared_state_up == 0',
            '2m',
            'warning',
            '{{ $labels.instance }} cannot reach the shared limit store (Redis)',
            'Each instance keeps enforcing virtual-key limits on what it knows and hands its usage over when Redis is back; meanwhile replicas together may exceed a limit.',
          ),
        ],
      },
    ],
  };
}

const HEADER = (how: string) =>
  `# TierFlow alerting rules. Generated by scripts/gen-observability.ts from scripts/observability/alerts.ts: do not edit.\n# ${how}\n`;

/** The plain rules file, thresholds at their defaults (prometheus.yml: rule_files). */
export function plainRulesFile(): string {
  let text = stringify(alertGroups(), { lineWidth: 0 });
  for (const [name, value] of Object.entries(THRESHOLDS))
    text = text.replaceAll(t(name as Threshold), String(value));
  return (
    HEADER(
      'Thresholds are the defaults; the Helm chart makes them values (metrics.prometheusRule.thresholds).',
    ) + text
  );
}

/**
 * The chart's copy, rendered by templates/prometheusrule.yaml with `tpl`: Prometheus' own
 * `{{ ... }}` templates are escaped for Helm, thresholds become value lookups.
 */
export function chartRulesFile(): string {
  let text = stringify(alertGroups(), { lineWidth: 0 });
  text = text.replace(/\{\{.*?\}\}/g, (m) => `{{\`${m}\`}}`);
  for (const name of Object.keys(THRESHOLDS))
    text = text.replaceAll(t(name as Threshold), `{{ .Values.metrics.prometheusRule.thresholds.${name} }}`);
  return HEADER('templates/prometheusrule.yaml renders it with `tpl`.') + text;
}
