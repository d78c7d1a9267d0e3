// The chart-generated webhook certificate across upgrades: reused while far from expiry, renewed
// within webhook.generatedCertRenewDays (or when an older chart's Secret has no expiry annotation),
// with the previous CA still trusted in the caBundle during the switch. `lookup` returns nothing
// under `helm template`, so the real helm binary renders the chart's own helper in a small test
// chart, given the Secret a previous release left behind.
import { X509Certificate } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CHART, find, helm, renderChart, valuesFile } from './helm.js';

const DAY = 86_400_000;

function testChart(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tierflow-certchart-'));
  for (const f of ['Chart.yaml', 'values.yaml']) cpSync(join(CHART, f), join(dir, f));
  mkdirSync(join(dir, 'templates'));
  cpSync(join(CHART, 'templates', '_helpers.tpl'), join(dir, 'templates', '_helpers.tpl'));
  writeFileSync(
    join(dir, 'templates', 'cert.yaml'),
    `{{- $c := include "tierflow.webhookCert" (dict "ctx" . "existing" .Values.previousSecret) | fromYaml }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: cert
data:
  {{- range $k, $v := $c }}
  {{ $k }}: {{ $v | quote }}
  {{- end }}
`,
  );
  return dir;
}

const chart = testChart();

function render(previousSecret: unknown): Record<string, string> {
  const r = helm([
    'template',
    'tf',
    chart,
    '-n',
    'tierflow-system',
    '--values',
    valuesFile({ previousSecret }),
  ]);
  if (r.status !== 0) throw new Error(r.stderr);
  return parse(r.stdout).data;
}

const pems = (b64: string) =>
  Buffer.from(b64, 'base64')
    .toString('utf8')
    .split(/(?=-----BEGIN CERTIFICATE-----)/)
    .filter((p) => p.includes('BEGIN'))
    .map((p) => new X509Certificate(p));

function secretFrom(c: Record<string, string>, notAfter?: string) {
  return {
    metadata: notAfter ? { annotations: { 'tierflow.dev/not-after': notAfter } } : {},
    data: { 'ca.crt': c.caCert, 'tls.crt': c.crt, 'tls.key': c.key },
  };
}

describe('chart-generated webhook certificate', () => {
  const first = render(null);

  it('is generated for the webhook Service, with its expiry recorded', () => {
    const crt = new X509Certificate(Buffer.from(first.crt!, 'base64'));
    const [ca] = pems(first.caBundle!);
    expect(crt.verify(ca!.publicKey)).toBe(true);
    expect(crt.subjectAltName).toContain('DNS:tf-tierflow-webhook.tierflow-system.svc');
    expect(Math.abs(Date.parse(first.notAfter!) - Date.parse(crt.validTo))).toBeLessThan(120_000);
    expect(Date.parse(first.notAfter!) - Date.now()).toBeGreaterThan(3600 * DAY);
  });

  it('is reused by an upgrade while far from expiry', () => {
    const again = render(secretFrom(first, first.notAfter));
    expect(again).toEqual(first);
  });

  it('is renewed within generatedCertRenewDays of expiry, trusting the old and the new CA meanwhile', () => {
    const soon = new Date(Date.now() + 10 * DAY).toISOString().replace(/\.\d+Z$/, 'Z');
    const renewed = render(secretFrom(first, soon));
    expect(renewed.crt).not.toBe(first.crt);
    expect(renewed.key).not.toBe(first.key);
    const bundle = pems(renewed.caBundle!);
    expect(bundle).toHaveLength(2);
    const [newCa, oldCa] = bundle;
    expect(new X509Certificate(Buffer.from(renewed.crt!, 'base64')).verify(newCa!.publicKey)).toBe(true);
    expect(new X509Certificate(Buffer.from(first.crt!, 'base64')).verify(oldCa!.publicKey)).toBe(true);
    // The Secret keeps the new CA only, so the next renewal carries one previous CA, not a chain of them.
    expect(pems(renewed.caCert!)).toHaveLength(1);
    expect(Date.parse(renewed.notAfter!) - Date.now()).toBeGreaterThan(3600 * DAY);
  });

  it("is renewed when an older chart's Secret has no expiry annotation", () => {
    const renewed = render(secretFrom(first));
    expect(renewed.crt).not.toBe(first.crt);
    expect(pems(renewed.caBundle!)).toHaveLength(2);
  });

  it('the chart puts the expiry on the Secret and the bundle in the webhook configuration', () => {
    const manifests = renderChart();
    const secret = find(manifests, 'Secret', '-webhook-tls');
    expect(Date.parse(secret.metadata.annotations['tierflow.dev/not-after'])).toBeGreaterThan(Date.now());
    const hooks = find(manifests, 'MutatingWebhookConfiguration').webhooks;
    for (const h of hooks) expect(h.clientConfig.caBundle).toBe(secret.data['ca.crt']);
    expect(readFileSync(join(CHART, 'values.yaml'), 'utf8')).toContain('generatedCertRenewDays');
  });
});
