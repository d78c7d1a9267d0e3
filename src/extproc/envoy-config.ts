// The Envoy bootstrap for the sidecar, from explicit options. One template for
// `tierflow envoy-config` (prints it) and the Helm chart (a generator script renders it).
//
// Shape (docs/envoy-ext-proc.md):
//   listener 127.0.0.1:<port> (plain HTTP; the app's OPENAI_BASE_URL points here)
//     per_connection_buffer_limit_bytes = body limit (larger BUFFERED bodies get 413)
//     HTTP filters: ext_proc -> dynamic_forward_proxy -> router
//       ext_proc: request headers SEND, request body BUFFERED, response headers SEND, response
//         body NONE unless TierFlow overrides it per response (allow_mode_override), trailers
//         SKIP; mutation_rules.allow_all_routing (TierFlow sets :authority and :scheme) and
//         allow_envoy (it sets x-envoy-upstream-rq-per-try-timeout-ms: the per-attempt
//         first-byte timeout, which ends where the response starts);
//         dynamic metadata received under `tierflow`; fail closed unless failOpen
//     routes: x-tierflow-cluster=tls -> DFP cluster with TLS, =plain -> DFP cluster without TLS
//       (in-cluster vLLM, Ollama), anything else -> a local 503 (TierFlow did not route it);
//       route timeout 0s (LLM streams), stream_idle_timeout bounds silence instead; the per-try
//       timeout TierFlow sets per request bounds the wait for response headers
//     paths normalised (dot segments, merged slashes), escaped slashes rejected
//   clusters: the two DFP clusters (sharing one DNS cache), ext_proc over the Unix socket (HTTP/2)
//   access log: JSON on stdout with TierFlow's dynamic metadata (never headers that carry keys)
import { stringify } from 'yaml';
import { SOCKET_DIR, SOCKET_FILE } from './socket-path.js';

export interface EnvoyConfigOptions {
  /** Address of the app-facing listener. Default 127.0.0.1 (only the pod's containers reach it). */
  listenerAddress?: string;
  /** Port of the app-facing listener; OPENAI_BASE_URL = http://127.0.0.1:<port>/v1. Default 10000. */
  listenerPort?: number;
  /** Unix socket of the tierflow container (shared emptyDir). Default /var/run/tierflow/sock/extproc.sock. */
  extProcSocket?: string;
  /** Reach ext_proc over TCP instead of the socket (e.g. local runs): host and port. */
  extProcTcp?: { host: string; port: number };
  /** Largest request/response body promised, bytes; also the ext_proc gRPC message limit (plus envelope). Default 32 MiB. */
  bufferLimitBytes?: number;
  /** false (default): when TierFlow is unreachable clients get a fast local 500. true: requests pass unprocessed. */
  failOpen?: boolean;
  /** Per ext_proc message timeout, ms. Default 5000. */
  messageTimeoutMs?: number;
  /** Longest wait TierFlow may ask for (override_message_timeout), e.g. a buffered failover, ms. Default 600000. */
  maxMessageTimeoutMs?: number;
  /** Longest silence on a stream (client or provider), seconds. Default 300. */
  streamIdleTimeoutS?: number;
  /** Upstream connect timeout, ms. Default 5000. */
  connectTimeoutMs?: number;
  /** CA bundle for provider TLS. Default /etc/ssl/certs/ca-certificates.crt. */
  trustedCaFile?: string;
  /** DNS family of the forward-proxy cache. Default V4_PREFERRED. */
  dnsLookupFamily?: 'AUTO' | 'V4_ONLY' | 'V6_ONLY' | 'V4_PREFERRED' | 'ALL';
  /** Envoy admin on 127.0.0.1 (readiness: GET /ready). 0 disables. Default 9901. */
  adminPort?: number;
  /**
   * Envoy admin on this Unix socket (mode 0600) instead of a port: in a pod, every container shares
   * 127.0.0.1, and the admin API can raise log levels (Envoy then logs upstream headers, provider
   * keys included) or stop Envoy. Takes precedence over adminPort.
   */
  adminSocket?: string;
  /** Access log: 'stdout' (default, JSON lines) or false. */
  accessLog?: 'stdout' | false;
  /** Dynamic metadata namespace TierFlow writes (must match the sidecar's). Default tierflow. */
  metadataNamespace?: string;
  /** Concurrent requests / connections per cluster (Envoy's circuit breakers). Default 10000. */
  maxConcurrentRequests?: number;
}

export const ENVOY_CONFIG_DEFAULTS = {
  listenerAddress: '127.0.0.1',
  listenerPort: 10000,
  extProcSocket: `${SOCKET_DIR}/${SOCKET_FILE}`,
  bufferLimitBytes: 32 * 1024 * 1024,
  failOpen: false,
  messageTimeoutMs: 5000,
  maxMessageTimeoutMs: 600_000,
  streamIdleTimeoutS: 300,
  connectTimeoutMs: 5000,
  trustedCaFile: '/etc/ssl/certs/ca-certificates.crt',
  dnsLookupFamily: 'V4_PREFERRED' as NonNullable<EnvoyConfigOptions['dnsLookupFamily']>,
  adminPort: 9901,
  accessLog: 'stdout' as 'stdout' | false,
  metadataNamespace: 'tierflow',
  maxConcurrentRequests: 10_000,
} satisfies Required<Omit<EnvoyConfigOptions, 'extProcTcp' | 'adminSocket'>>;

/** Mode of Envoy's admin socket: Envoy's UID only. */
export const ADMIN_SOCKET_MODE = 0o600;

/** Room for the gRPC/protobuf envelope around a body of exactly the limit (same as the server's). */
export const EXT_PROC_MESSAGE_OVERHEAD = 1024 * 1024;
export const CLUSTER_HEADER = 'x-tierflow-cluster';
export const EXT_PROC_CLUSTER = 'tierflow_ext_proc';
export const TLS_CLUSTER = 'tierflow_upstream_tls';
export const PLAIN_CLUSTER = 'tierflow_upstream_plain';

const T = (name: string) => `type.googleapis.com/${name}`;
const dur = (ms: number) => `${ms % 1000 === 0 ? ms / 1000 : (ms / 1000).toFixed(3)}s`;

/** The bootstrap as an object (what the YAML says); `renderEnvoyConfig` prints it. */
export function envoyBootstrap(options: EnvoyConfigOptions = {}): Record<string, unknown> {
  const given = Object.fromEntries(
    Object.entries(options).filter(([, v]) => v !== undefined),
  ) as EnvoyConfigOptions;
  const o: Required<Omit<EnvoyConfigOptions, 'extProcTcp' | 'adminSocket'>> & EnvoyConfigOptions = {
    ...ENVOY_CONFIG_DEFAULTS,
    ...given,
  };
  check(o);
  const ns = o.metadataNamespace;
  const limit = o.bufferLimitBytes;
  const dnsCache = {
    name: 'tierflow_dns',
    dns_lookup_family: o.dnsLookupFamily,
    max_hosts: 1024,
  };
  const breakers = {
    thresholds: [
      {
        priority: 'DEFAULT',
        max_connections: o.maxConcurrentRequests,
        max_pending_requests: o.maxConcurrentRequests,
        max_requests: o.maxConcurrentRequests,
        max_retries: 3,
      },
    ],
  };
  const noJsonError = JSON.stringify({
    error: {
      message: 'TierFlow did not route this request (the ext_proc sidecar is unavailable or skipped it).',
      type: 'api_error',
      param: null,
      code: 'tierflow_unavailable',
    },
  });

  const extProcFilter = {
    name: 'envoy.filters.http.ext_proc',
    typed_config: {
      '@type': T('envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor'),
      grpc_service: {
        envoy_grpc: {
          cluster_name: EXT_PROC_CLUSTER,
          max_receive_message_length: limit + EXT_PROC_MESSAGE_OVERHEAD,
        },
      },
      failure_mode_allow: o.failOpen,
      processing_mode: {
        request_header_mode: 'SEND',
        response_header_mode: 'SEND',
        request_body_mode: 'BUFFERED',
        response_body_mode: 'NONE',
        request_trailer_mode: 'SKIP',
        response_trailer_mode: 'SKIP',
      },
      message_timeout: dur(o.messageTimeoutMs),
      max_message_timeout: dur(o.maxMessageTimeoutMs),
      allow_mode_override: true,
      // allow_envoy: TierFlow sets x-envoy-upstream-rq-per-try-timeout-ms (the first-byte timeout).
      mutation_rules: { allow_all_routing: true, allow_envoy: true },
      metadata_options: { receiving_namespaces: { untyped: [ns] } },
      stat_prefix: 'tierflow',
    },
  };

  const route = (value: string, cluster: string) => ({
    name: `tierflow_${value}`,
    match: { prefix: '/', headers: [{ name: CLUSTER_HEADER, string_match: { exact: value } }] },
    route: { cluster, timeout: '0s' },
    request_headers_to_remove: [CLUSTER_HEADER],
  });

  const hcm: Record<string, unknown> = {
    '@type': T('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'),
    stat_prefix: 'tierflow',
    codec_type: 'AUTO',
    stream_idle_timeout: `${o.streamIdleTimeoutS}s`,
    request_timeout: '0s',
    always_set_request_id_in_response: true,
    // Paths are normalised before ext_proc and routing see them (RFC 3986 dot segments, `//`),
    // and an escaped slash (%2F, %5C) is refused: a pass-through path cannot climb out of the
    // provider's base path.
    normalize_path: true,
    merge_slashes: true,
    path_with_escaped_slashes_action: 'REJECT_REQUEST',
    // A plain-HTTP app still reaches TLS providers: the TLS cluster needs :scheme https.
    scheme_header_transformation: { scheme_to_overwrite: 'https' },
    route_config: {
      name: 'tierflow',
      virtual_hosts: [
        {
          name: 'llm',
          domains: ['*'],
          routes: [
            route('tls', TLS_CLUSTER),
            route('plain', PLAIN_CLUSTER),
            {
              name: 'tierflow_unrouted',
              match: { prefix: '/' },
              direct_response: { status: 503, body: { inline_string: noJsonError } },
              response_headers_to_add: [{ header: { key: 'content-type', value: 'application/json' } }],
            },
          ],
        },
      ],
    },
    http_filters: [
      extProcFilter,
      {
        name: 'envoy.filters.http.dynamic_forward_proxy',
        typed_config: {
          '@type': T('envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig'),
          dns_cache_config: dnsCache,
        },
      },
      {
        name: 'envoy.filters.http.router',
        typed_config: { '@type': T('envoy.extensions.filters.http.router.v3.Router') },
      },
    ],
  };
  if (o.accessLog === 'stdout') {
    const md = (key: string) => `%DYNAMIC_METADATA(${ns}:${key})%`;
    hcm.access_log = [
      {
        name: 'envoy.access_loggers.stdout',
        typed_config: {
          '@type': T('envoy.extensions.access_loggers.stream.v3.StdoutAccessLog'),
          log_format: {
            json_format: {
              start: '%START_TIME%',
              request_id: '%REQ(X-REQUEST-ID)%',
              method: '%REQ(:METHOD)%',
              path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
              status: '%RESPONSE_CODE%',
              flags: '%RESPONSE_FLAGS%',
              details: '%RESPONSE_CODE_DETAILS%',
              duration_ms: '%DURATION%',
              upstream_host: '%UPSTREAM_HOST%',
              upstream_cluster: '%UPSTREAM_CLUSTER%',
              bytes_received: '%BYTES_RECEIVED%',
              bytes_sent: '%BYTES_SENT%',
              model: md('model'),
              provider: md('provider'),
              tier: md('tier'),
              policy: md('policy'),
              score: md('score'),
              attempts: md('attempts'),
              cost_usd: md('cost_usd'),
              prompt_tokens: md('prompt_tokens'),
              completion_tokens: md('completion_tokens'),
            },
          },
        },
      },
    ];
  }

  const upstreamCluster = (name: string, tls: boolean) => {
    const c: Record<string, unknown> = {
      name,
      connect_timeout: dur(o.connectTimeoutMs),
      lb_policy: 'CLUSTER_PROVIDED',
      per_connection_buffer_limit_bytes: limit,
      circuit_breakers: breakers,
      cluster_type: {
        name: 'envoy.clusters.dynamic_forward_proxy',
        typed_config: {
          '@type': T('envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig'),
          dns_cache_config: dnsCache,
        },
      },
      typed_extension_protocol_options: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
          '@type': T('envoy.extensions.upstreams.http.v3.HttpProtocolOptions'),
          ...(tls ? { upstream_http_protocol_options: { auto_sni: true, auto_san_validation: true } } : {}),
          common_http_protocol_options: { idle_timeout: '60s' },
          explicit_http_config: { http_protocol_options: {} },
        },
      },
    };
    if (tls) {
      c.transport_socket = {
        name: 'envoy.transport_sockets.tls',
        typed_config: {
          '@type': T('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext'),
          common_tls_context: { validation_context: { trusted_ca: { filename: o.trustedCaFile } } },
        },
      };
    }
    return c;
  };

  const extProcAddress = options.extProcTcp
    ? { socket_address: { address: options.extProcTcp.host, port_value: options.extProcTcp.port } }
    : { pipe: { path: o.extProcSocket } };

  const bootstrap: Record<string, unknown> = {
    static_resources: {
      listeners: [
        {
          name: 'tierflow',
          address: { socket_address: { address: o.listenerAddress, port_value: o.listenerPort } },
          per_connection_buffer_limit_bytes: limit,
          filter_chains: [
            {
              filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }],
            },
          ],
        },
      ],
      clusters: [
        upstreamCluster(TLS_CLUSTER, true),
        upstreamCluster(PLAIN_CLUSTER, false),
        {
          name: EXT_PROC_CLUSTER,
          type: 'STATIC',
          connect_timeout: '1s',
          per_connection_buffer_limit_bytes: limit + EXT_PROC_MESSAGE_OVERHEAD,
          circuit_breakers: breakers,
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': T('envoy.extensions.upstreams.http.v3.HttpProtocolOptions'),
              explicit_http_config: {
                http2_protocol_options: { connection_keepalive: { interval: '30s', timeout: '5s' } },
              },
            },
          },
          load_assignment: {
            cluster_name: EXT_PROC_CLUSTER,
            endpoints: [{ lb_endpoints: [{ endpoint: { address: extProcAddress } }] }],
          },
        },
      ],
    },
    // Pin the header-value encoding ext_proc uses (raw_value) whatever the Envoy version's default.
    layered_runtime: {
      layers: [
        { name: 'tierflow', static_layer: { 'envoy.reloadable_features.send_header_raw_value': true } },
      ],
    },
  };
  if (o.adminSocket) {
    bootstrap.admin = { address: { pipe: { path: o.adminSocket, mode: ADMIN_SOCKET_MODE } } };
  } else if (o.adminPort > 0) {
    bootstrap.admin = { address: { socket_address: { address: '127.0.0.1', port_value: o.adminPort } } };
  }
  return bootstrap;
}

/** The bootstrap YAML, with a header saying where it comes from. */
export function renderEnvoyConfig(options: EnvoyConfigOptions = {}): string {
  const head =
    '# Envoy bootstrap for the TierFlow sidecar. Generated by `tierflow envoy-config`; do not edit by hand.\n' +
    '# The app calls http://<listener>/v1 (OPENAI_BASE_URL); TierFlow answers ext_proc over the Unix socket.\n';
  // YAML 1.1 output: Envoy's YAML reader (yaml-cpp) takes unquoted on/off/yes/no as booleans.
  return head + stringify(envoyBootstrap(options), { lineWidth: 0, version: '1.1' });
}

function check(
  o: Required<Omit<EnvoyConfigOptions, 'extProcTcp' | 'adminSocket'>> & EnvoyConfigOptions,
): void {
  const int = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max)
      throw new Error(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  };
  int('listenerPort', o.listenerPort, 1, 65535);
  int('bufferLimitBytes', o.bufferLimitBytes, 1024, 2 ** 32 - 1 - EXT_PROC_MESSAGE_OVERHEAD);
  int('messageTimeoutMs', o.messageTimeoutMs, 1, 3_600_000);
  int('maxMessageTimeoutMs', o.maxMessageTimeoutMs, 0, 3_600_000);
  int('streamIdleTimeoutS', o.streamIdleTimeoutS, 0, 86_400);
  int('connectTimeoutMs', o.connectTimeoutMs, 1, 600_000);
  int('adminPort', o.adminPort, 0, 65535);
  int('maxConcurrentRequests', o.maxConcurrentRequests, 1, 2 ** 31 - 1);
  if (o.extProcTcp) int('extProcTcp.port', o.extProcTcp.port, 1, 65535);
  if (o.adminSocket !== undefined && !o.adminSocket.startsWith('/'))
    throw new Error(`adminSocket must be an absolute path, got ${o.adminSocket}`);
  if (!o.extProcTcp && !o.extProcSocket.startsWith('/'))
    throw new Error(`extProcSocket must be an absolute path, got ${o.extProcSocket}`);
  if (!/^[a-z0-9_.-]+$/i.test(o.metadataNamespace))
    throw new Error(`metadataNamespace has invalid characters: ${o.metadataNamespace}`);
}
