import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/observe/log.js';
import { otelSettingsFromEnv } from '../../src/observe/otel.js';
import { otelRequested } from '../../src/observe/tracing.js';

describe('OpenTelemetry settings from the OTEL_* environment', () => {
  it('is off without an endpoint, or when disabled', () => {
    expect(otelRequested({})).toBe(false);
    expect(otelSettingsFromEnv({}, silentLogger)).toBeUndefined();
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' };
    expect(otelRequested(env)).toBe(false);
    expect(otelSettingsFromEnv(env, silentLogger)).toBeUndefined();
  });

  it('derives the signal URLs from the base endpoint, lets a signal-specific one or `none` win', () => {
    expect(
      otelSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }, silentLogger),
    ).toMatchObject({
      tracesUrl: 'http://collector:4318/v1/traces',
      metricsUrl: 'http://collector:4318/v1/metrics',
      scheduleDelayMs: 5000,
      metricIntervalMs: 60_000,
    });
    const s = otelSettingsFromEnv(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example.com/otlp/v1/traces',
        OTEL_METRICS_EXPORTER: 'none',
      },
      silentLogger,
    )!;
    expect(s.tracesUrl).toBe('https://traces.example.com/otlp/v1/traces');
    expect(s.metricsUrl).toBeUndefined();
    const metricsOnly = { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:4318/v1/metrics' };
    expect(otelRequested(metricsOnly)).toBe(true);
    expect(otelSettingsFromEnv(metricsOnly, silentLogger)).toMatchObject({
      metricsUrl: 'http://m:4318/v1/metrics',
    });
    expect(otelSettingsFromEnv(metricsOnly, silentLogger)!.tracesUrl).toBeUndefined();
  });

  it('decodes headers and resource attributes; the service name defaults to tierflow', () => {
    const s = otelSettingsFromEnv(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc, x-tenant = team%2Fa,broken',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,k8s.namespace.name=llm',
        OTEL_BSP_SCHEDULE_DELAY: '250',
        OTEL_METRIC_EXPORT_INTERVAL: 'soon',
      },
      silentLogger,
    )!;
    expect(s.headers).toEqual({ authorization: 'Bearer abc', 'x-tenant': 'team/a' });
    expect(s.resource).toEqual({
      'deployment.environment': 'prod',
      'k8s.namespace.name': 'llm',
      'service.name': 'tierflow',
      'service.version': '0.1.0',
    });
    expect(s.scheduleDelayMs).toBe(250);
    expect(s.metricIntervalMs).toBe(60_000);
  });

  it('warns that only http/json is spoken', () => {
    const warned: string[] = [];
    const log = { ...silentLogger, warn: (m: string) => warned.push(m) };
    otelSettingsFromEnv(
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      log,
    );
    expect(warned.join()).toMatch(/only http\/json/);
  });
});
