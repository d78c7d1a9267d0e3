// Every generated observability file, by path relative to the repository root.
import { chartRulesFile, plainRulesFile } from './alerts.ts';
import { dashboard } from './dashboard.ts';

export const DASHBOARD_FILE = 'observability/grafana/tierflow-dashboard.json';
export const RULES_FILE = 'observability/prometheus/tierflow-alerts.yaml';
export const RULES_TEST_FILE = 'observability/prometheus/tierflow-alerts.test.yaml';

export function observabilityFiles(): Record<string, string> {
  const json = JSON.stringify(dashboard(), null, 2) + '\n';
  return {
    [DASHBOARD_FILE]: json,
    [RULES_FILE]: plainRulesFile(),
    'charts/tierflow/files/grafana-dashboard.json': json,
    'charts/tierflow/files/prometheus-rules.yaml': chartRulesFile(),
  };
}
