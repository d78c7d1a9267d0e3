// The alerting rules with the real promtool (Debian package `prometheus`): the shipped file is
// valid, its unit tests pass, and those tests bite (a rule with a wrong threshold fails them).
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { THRESHOLDS } from '../../scripts/observability/alerts.ts';
import { observabilityFiles, RULES_FILE, RULES_TEST_FILE } from '../../scripts/observability/files.ts';
import { findPrometheusTool } from '../helpers/prometheus.js';

const ROOT = join(import.meta.dirname, '..', '..');
const promtool = findPrometheusTool('promtool');

describe('generated dashboard and rules', () => {
  it('are up to date with scripts/observability', () => {
    for (const [rel, text] of Object.entries(observabilityFiles())) {
      expect(readFileSync(join(ROOT, rel), 'utf8'), `stale: ${rel}: run npm run gen:k8s`).toBe(text);
    }
  });
});

describe.skipIf(!promtool)('alerting rules (promtool)', () => {
  it('pass promtool check rules', () => {
    const out = execFileSync(promtool!, ['check', 'rules', join(ROOT, RULES_FILE)], { encoding: 'utf8' });
    expect(out).toMatch(/SUCCESS: 8 rules found/);
  });

  it('pass their unit tests (promtool test rules)', () => {
    const r = spawnSync(promtool!, ['test', 'rules', join(ROOT, RULES_TEST_FILE)], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS/);
  });

  it('whose unit tests fail on a rule that does not do what it says', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tierflow-rules-'));
    copyFileSync(join(ROOT, RULES_TEST_FILE), join(dir, 'tierflow-alerts.test.yaml'));
    const rules = readFileSync(join(ROOT, RULES_FILE), 'utf8');
    const broken = rules.replace(`> ${THRESHOLDS.providerErrorRatio}\n`, '> 0.5\n');
    expect(broken).not.toBe(rules);
    writeFileSync(join(dir, 'tierflow-alerts.yaml'), broken);
    const r = spawnSync(promtool!, ['test', 'rules', join(dir, 'tierflow-alerts.test.yaml')], {
      encoding: 'utf8',
    });
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/alertname: TierFlowProviderErrorRate/);
  });

  it('every alert has a unit test that expects it to fire', () => {
    const alerts = (parse(readFileSync(join(ROOT, RULES_FILE), 'utf8')) as any).groups.flatMap((g: any) =>
      g.rules.map((r: any) => r.alert as string),
    );
    const tests = parse(readFileSync(join(ROOT, RULES_TEST_FILE), 'utf8')) as any;
    const firing = new Set(
      tests.tests.flatMap((t: any) =>
        t.alert_rule_test.filter((a: any) => a.exp_alerts.length > 0).map((a: any) => a.alertname),
      ),
    );
    expect(alerts.filter((a: string) => !firing.has(a))).toEqual([]);
  });
});
