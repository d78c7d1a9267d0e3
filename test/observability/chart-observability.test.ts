// The chart's observability objects with the real helm binary: off by default; the dashboard
// ConfigMap carries Grafana's sidecar label and the generated dashboard; the PrometheusRule holds
// exactly the plain rules file (thresholds from values, checked by promtool); the PodMonitor finds
// the injected sidecars' metrics port.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { DASHBOARD_FILE, RULES_FILE } from '../../scripts/observability/files.ts';
import { CHART, find, helm, renderChart, valuesFile, type Manifest } from '../k8s/helm.js';
import { findPrometheusTool } from '../helpers/prometheus.js';

const ROOT = join(import.meta.dirname, '..', '..');
const promtool = findPrometheusTool('promtool');
const ALL_ON = {
  metrics: {
    podMonitor: { enabled: true },
    prometheusRule: { enabled: true },
    grafanaDashboard: { enabled: true },
  },
};
const kinds = (ms: Manifest[]) => ms.map((m) => `${m.kind}/${m.metadata.name}`);

describe('chart: dashboard, alert rules and sidecar scraping', () => {
  it('creates none of them by default, and passes helm lint with all of them on', () => {
    const defaults = kinds(renderChart());
    expect(defaults.filter((k) => /PodMonitor|PrometheusRule|dashboard/.test(k))).toEqual([]);
    const r = helm(['lint', '--strict', CHART, '--values', valuesFile(ALL_ON)]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it("ships the generated dashboard in a ConfigMap with Grafana's sidecar label", () => {
    const ms = renderChart({
      metrics: {
        grafanaDashboard: { enabled: true, namespace: 'monitoring', annotations: { grafana_folder: 'LLM' } },
      },
    });
    const cm = find(ms, 'ConfigMap', '-dashboard');
    expect(cm.metadata.namespace).toBe('monitoring');
    expect(cm.metadata.labels.grafana_dashboard).toBe('1');
    expect(cm.metadata.annotations).toEqual({ grafana_folder: 'LLM' });
    expect(JSON.parse(cm.data['tierflow.json'])).toEqual(
      JSON.parse(readFileSync(join(ROOT, DASHBOARD_FILE), 'utf8')),
    );
  });

  it('renders the PrometheusRule as the plain rules file, thresholds taken from values', () => {
    const plain = parse(readFileSync(join(ROOT, RULES_FILE), 'utf8'));
    const rule = find(renderChart(ALL_ON), 'PrometheusRule');
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(rule.spec).toEqual(plain);

    const custom = find(
      renderChart({
        metrics: {
          prometheusRule: {
            enabled: true,
            labels: { release: 'prometheus' },
            thresholds: { providerErrorRatio: 0.35, ttftSeconds: 8, ttftObjective: 0.99, budgetRatio: 0.75 },
          },
        },
      }),
      'PrometheusRule',
    );
    expect(custom.metadata.labels.release).toBe('prometheus');
    const exprs = Object.fromEntries(
      custom.spec.groups.flatMap((g: any) => g.rules.map((r: any) => [r.alert, r.expr as string])),
    );
    expect(exprs.TierFlowProviderErrorRate).toMatch(/> 0\.35$/);
    expect(exprs.TierFlowTimeToFirstTokenSLO).toContain('le="8"');
    expect(exprs.TierFlowTimeToFirstTokenSLO).toMatch(/> 1 - 0\.99$/);
    expect(exprs.TierFlowBudgetNearlyExhausted).toMatch(/> 0\.75$/);
    // Prometheus' templates reach Prometheus untouched by Helm
    expect(JSON.stringify(custom.spec)).toContain('{{ $labels.provider }}');
    if (promtool) {
      const file = join(mkdtempSync(join(tmpdir(), 'tierflow-rule-')), 'rules.yaml');
      writeFileSync(file, stringify(custom.spec));
      expect(execFileSync(promtool, ['check', 'rules', file], { encoding: 'utf8' })).toMatch(
        /SUCCESS: 8 rules/,
      );
    }
  });

  it('refuses thresholds that cannot work', () => {
    for (const thresholds of [{ ttftSeconds: 3 }, { budgetRatio: 1.5 }, { providerErrorRatio: -0.1 }]) {
      const r = helm([
        'template',
        'tf',
        CHART,
        '--values',
        valuesFile({ metrics: { prometheusRule: { enabled: true, thresholds } } }),
      ]);
      expect(r.status, JSON.stringify(thresholds)).not.toBe(0);
      expect(r.stderr).toMatch(/metrics\.prometheusRule\.thresholds\.\w+ must be/);
    }
  });

  it('scrapes the injected sidecars through a PodMonitor, in the sidecar namespaces or all', () => {
    const all = find(renderChart(ALL_ON), 'PodMonitor');
    expect(all.spec.selector).toEqual({ matchLabels: { 'tierflow.dev/injected': 'true' } });
    expect(all.spec.namespaceSelector).toEqual({ any: true });
    expect(all.spec.podMetricsEndpoints).toEqual([
      expect.objectContaining({
        port: 'tf-metrics',
        path: '/metrics',
        interval: '30s',
        metricRelabelings: [{ sourceLabels: ['__name__'], regex: 'tierflow_nodejs_.+', action: 'drop' }],
      }),
    ]);
    const some = find(
      renderChart({
        sidecar: { namespaces: ['team-a', 'team-b'] },
        metrics: { podMonitor: { enabled: true, interval: '15s', dropRuntimeMetrics: false } },
      }),
      'PodMonitor',
    );
    expect(some.spec.namespaceSelector).toEqual({ matchNames: ['team-a', 'team-b'] });
    expect(some.spec.podMetricsEndpoints[0].interval).toBe('15s');
    expect(some.spec.podMetricsEndpoints[0].metricRelabelings).toBeUndefined();
    const r = helm([
      'template',
      'tf',
      CHART,
      '--values',
      valuesFile({ sidecar: { metricsPort: 0 }, metrics: { podMonitor: { enabled: true } } }),
    ]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('metrics.podMonitor needs sidecar.metricsPort');
  });
});
