// Every Envoy config we ship is checked against Envoy's real protos with a strict walker (unknown
// fields, wrong types, unknown enum values, inside typed_config Any values too), plus the
// properties docs/envoy-ext-proc.md requires of it. The walker itself is shown to catch each
// kind of mistake.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  envoyBootstrap,
  renderEnvoyConfig,
  type EnvoyConfigOptions,
} from '../../src/extproc/envoy-config.js';
import { validateBootstrap, validateEnvoyMessage } from './proto-validate.js';

const VARIANTS: [string, EnvoyConfigOptions][] = [
  ['defaults', {}],
  ['fail open, no admin, no access log', { failOpen: true, adminPort: 0, accessLog: false }],
  [
    'ext_proc over TCP, other limits',
    {
      extProcTcp: { host: '127.0.0.1', port: 50051 },
      bufferLimitBytes: 8 * 1024 * 1024,
      listenerPort: 15000,
      messageTimeoutMs: 2500,
      dnsLookupFamily: 'ALL',
    },
  ],
];

const fmt = (issues: { path: string; message: string }[]) =>
  issues.map((i) => `${i.path}: ${i.message}`).join('\n');

describe('Envoy bootstrap from the template', () => {
  for (const [name, opts] of VARIANTS) {
    it(`validates strictly against the real protos (${name})`, () => {
      const yaml = renderEnvoyConfig(opts);
      const issues = validateBootstrap(parse(yaml));
      expect(fmt(issues)).toBe('');
    });
  }

  it('follows the ext_proc brief', () => {
    const b = parse(renderEnvoyConfig()) as any;
    const listener = b.static_resources.listeners[0];
    expect(listener.address.socket_address).toEqual({ address: '127.0.0.1', port_value: 10000 });
    expect(listener.per_connection_buffer_limit_bytes).toBe(32 * 1024 * 1024);
    const hcm = listener.filter_chains[0].filters[0].typed_config;
    expect(hcm.http_filters.map((f: any) => f.name)).toEqual([
      'envoy.filters.http.ext_proc',
      'envoy.filters.http.dynamic_forward_proxy',
      'envoy.filters.http.router',
    ]);
    const ep = hcm.http_filters[0].typed_config;
    expect(ep.failure_mode_allow).toBe(false);
    expect(ep.allow_mode_override).toBe(true);
    // allow_envoy: the per-try timeout header (x-envoy-upstream-rq-per-try-timeout-ms) must take effect.
    expect(ep.mutation_rules).toEqual({ allow_all_routing: true, allow_envoy: true });
    expect(ep.processing_mode).toEqual({
      request_header_mode: 'SEND',
      response_header_mode: 'SEND',
      request_body_mode: 'BUFFERED',
      response_body_mode: 'NONE',
      request_trailer_mode: 'SKIP',
      response_trailer_mode: 'SKIP',
    });
    expect(parseFloat(ep.message_timeout)).toBeGreaterThanOrEqual(2);
    expect(parseFloat(ep.max_message_timeout)).toBeGreaterThan(60);
    expect(ep.metadata_options.receiving_namespaces.untyped).toEqual(['tierflow']);
    expect(ep.grpc_service.envoy_grpc.max_receive_message_length).toBeGreaterThan(32 * 1024 * 1024);
    for (const r of hcm.route_config.virtual_hosts[0].routes.filter((r: any) => r.route))
      expect(r.route.timeout).toBe('0s');
    expect(hcm.stream_idle_timeout).toBe('300s');
    expect(hcm.normalize_path).toBe(true);
    expect(hcm.merge_slashes).toBe(true);
    expect(hcm.path_with_escaped_slashes_action).toBe('REJECT_REQUEST');
    const clusters = Object.fromEntries(b.static_resources.clusters.map((c: any) => [c.name, c]));
    expect(clusters.tierflow_upstream_tls.transport_socket.name).toBe('envoy.transport_sockets.tls');
    const tlsOpts =
      clusters.tierflow_upstream_tls.typed_extension_protocol_options[
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions'
      ];
    expect(tlsOpts.upstream_http_protocol_options).toEqual({ auto_sni: true, auto_san_validation: true });
    expect(clusters.tierflow_upstream_plain.transport_socket).toBeUndefined();
    expect(clusters.tierflow_ext_proc.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address).toEqual({
      pipe: { path: '/var/run/tierflow/sock/extproc.sock' },
    });
    const h2 =
      clusters.tierflow_ext_proc.typed_extension_protocol_options[
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions'
      ];
    expect(h2.explicit_http_config.http2_protocol_options).toBeDefined();
    // the DNS cache of the filter and of both clusters is one and the same
    const dfpFilter = hcm.http_filters[1].typed_config.dns_cache_config;
    expect(clusters.tierflow_upstream_tls.cluster_type.typed_config.dns_cache_config).toEqual(dfpFilter);
    expect(clusters.tierflow_upstream_plain.cluster_type.typed_config.dns_cache_config).toEqual(dfpFilter);
    // access log reads our dynamic metadata, and never a credential header
    const log = JSON.stringify(hcm.access_log);
    expect(log).toContain('%DYNAMIC_METADATA(tierflow:model)%');
    expect(log.toLowerCase()).not.toMatch(/authorization|api-key|x-api-key/);
  });

  it('rejects nonsense options', () => {
    expect(() => envoyBootstrap({ listenerPort: 0 })).toThrow(/listenerPort/);
    expect(() => envoyBootstrap({ extProcSocket: 'relative.sock' })).toThrow(/absolute/);
    expect(() => envoyBootstrap({ bufferLimitBytes: 12.5 })).toThrow(/bufferLimitBytes/);
  });
});

/**
 * The few Helm expressions the chart's files use ({{ .Values.a.b }}, {{ int X }}, {{ add X N }},
 * {{ X | quote }}),
 * evaluated against values.yaml (or overrides). Anything else fails the test: this is no Helm.
 */
function renderHelmValues(text: string, values: Record<string, unknown>): string {
  const lookup = (path: string): unknown => {
    let v: unknown = values;
    for (const k of path.split('.').filter(Boolean)) v = (v as Record<string, unknown> | undefined)?.[k];
    if (v === undefined) throw new Error(`values has no ${path}`);
    return v;
  };
  const evaluate = (expr: string): unknown => {
    expr = expr.trim();
    let m: RegExpExecArray | null;
    if ((m = /^\((.*)\)$/.exec(expr))) return evaluate(m[1]!);
    if ((m = /^(.+) \| quote$/.exec(expr))) return JSON.stringify(String(evaluate(m[1]!)));
    if ((m = /^\.Values(\.[\w.]+)$/.exec(expr))) return lookup(m[1]!);
    if ((m = /^int (.+)$/.exec(expr))) return Math.trunc(Number(evaluate(m[1]!)));
    if ((m = /^add (\(.+\)|\S+) (\S+)$/.exec(expr))) return Number(evaluate(m[1]!)) + Number(evaluate(m[2]!));
    if (/^-?\d+$/.test(expr)) return Number(expr);
    throw new Error(`unsupported template expression {{ ${expr} }}`);
  };
  return text.replace(/\{\{-?\s*(.*?)\s*-?\}\}/g, (_m, expr: string) => String(evaluate(expr)));
}

describe('every Envoy config shipped in the repository', () => {
  // Generated files (the Helm chart's Envoy bootstrap) must pass the same walker.
  const roots = ['charts', 'deploy', 'examples'].map((d) => path.resolve(d)).filter((d) => existsSync(d));
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = path.join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ya?ml|json)$/.test(e) && !p.includes(`${path.sep}templates${path.sep}`)) files.push(p);
    }
  };
  roots.forEach(walk);
  const envoyFiles = files.filter((f) =>
    /(^|\n)static_resources:|"static_resources"/.test(readFileSync(f, 'utf8')),
  );
  const valuesFile = path.resolve('charts/tierflow/values.yaml');
  const chartValues = existsSync(valuesFile)
    ? (parse(readFileSync(valuesFile, 'utf8')) as Record<string, unknown>)
    : {};

  it('finds the shipped configs (or none yet)', () => {
    expect(Array.isArray(envoyFiles)).toBe(true);
  });
  for (const f of envoyFiles) {
    it(`validates ${path.relative(process.cwd(), f)} (chart values, and fail-open with other limits)`, () => {
      const raw = readFileSync(f, 'utf8');
      const variants: Record<string, unknown>[] = [{ Values: chartValues }];
      if (raw.includes('{{')) {
        const v = structuredClone(chartValues) as Record<string, Record<string, unknown>>;
        if (v.sidecar)
          Object.assign(v.sidecar, { failOpen: true, bufferLimitBytes: 8388608, listenerPort: 15001 });
        variants.push({ Values: v });
      }
      for (const ctx of variants) {
        const text = raw.includes('{{') ? renderHelmValues(raw, ctx.Values as Record<string, unknown>) : raw;
        const doc = parse(text) as Record<string, unknown>;
        const bootstrap = doc?.static_resources
          ? doc
          : Object.values(doc ?? {}).find((v) => (v as Record<string, unknown>)?.static_resources);
        expect(fmt(validateBootstrap(bootstrap))).toBe('');
      }
    });
  }
});

describe('the strict walker fails on every kind of mistake', () => {
  const good = () => parse(renderEnvoyConfig()) as any;
  const hcmOf = (b: any) => b.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;

  it('unknown field at the top and deep inside typed_config Any values', () => {
    const b = good();
    b.static_resorces = {};
    hcmOf(b).http_filters[0].typed_config.procesing_mode = {};
    const msgs = fmt(validateBootstrap(b));
    expect(msgs).toMatch(/unknown field "static_resorces"/);
    expect(msgs).toMatch(/ExternalProcessor>\.procesing_mode: unknown field "procesing_mode"/);
  });

  it('wrong types', () => {
    const b = good();
    b.static_resources.listeners[0].per_connection_buffer_limit_bytes = '32MiB';
    hcmOf(b).http_filters[0].typed_config.allow_mode_override = 'yes';
    hcmOf(b).stream_idle_timeout = 300;
    const msgs = fmt(validateBootstrap(b));
    expect(msgs).toMatch(/per_connection_buffer_limit_bytes: expected an integer/);
    expect(msgs).toMatch(/allow_mode_override: expected a boolean/);
    expect(msgs).toMatch(/stream_idle_timeout: expected a Duration/);
  });

  it('unknown enum values (FULL_DUPLEX_STREAMED is not in this API version)', () => {
    const b = good();
    hcmOf(b).http_filters[0].typed_config.processing_mode.response_body_mode = 'FULL_DUPLEX_STREAMED';
    b.static_resources.clusters[0].lb_policy = 'ROUND_ROBINN';
    const msgs = fmt(validateBootstrap(b));
    expect(msgs).toMatch(/unknown enum value "FULL_DUPLEX_STREAMED"/);
    expect(msgs).toMatch(/unknown enum value "ROUND_ROBINN"/);
  });

  it('unknown @type, Any values in maps, oneof conflicts, missing required fields', () => {
    const b = good();
    hcmOf(b).http_filters[2].typed_config['@type'] =
      'type.googleapis.com/envoy.extensions.filters.http.router.v3.Routerr';
    const opts =
      b.static_resources.clusters[2].typed_extension_protocol_options[
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions'
      ];
    opts.explicit_http_config.http3_protocol_options = {};
    opts.explicit_http_config.bogus = 1;
    delete hcmOf(b).http_filters[0].typed_config.grpc_service;
    const msgs = fmt(validateBootstrap(b));
    expect(msgs).toMatch(/unknown message type envoy.extensions.filters.http.router.v3.Routerr/);
    expect(msgs).toMatch(/oneof protocol_config of .* has several members set/);
    expect(msgs).toMatch(/unknown field "bogus"/);
    expect(msgs).toMatch(
      /required field grpc_service of envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor is missing/,
    );
  });

  it('accepts both snake_case and lowerCamel names, as Envoy does', () => {
    expect(
      validateEnvoyMessage('envoy.config.core.v3.SocketAddress', { address: '::1', portValue: 1 }),
    ).toEqual([]);
    expect(
      fmt(validateEnvoyMessage('envoy.config.core.v3.SocketAddress', { address: '::1', port_value: -1 })),
    ).toMatch(/out of range/);
  });
});
