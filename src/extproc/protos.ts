// Envoy's API protos, loaded at run time from the npm package that ships them (see proto/README.md).
// Nothing is copied into this repository: @grpc/grpc-js-xds carries Envoy's data-plane-api
// (deps/envoy-api) with its dependencies (deps/xds, deps/googleapis, deps/protoc-gen-validate).
import { createRequire } from 'node:module';
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import type { ServiceDefinition } from '@grpc/grpc-js';

const require = createRequire(import.meta.url);

/** The four include folders, in the order protoc would search them. */
export function envoyProtoDirs(): string[] {
  const pkg = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  return ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(pkg, 'deps', d));
}

export const EXT_PROC_PROTO = 'envoy/service/ext_proc/v3/external_processor.proto';
export const EXT_PROC_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';
export const EXT_PROC_METHOD_PATH = `/${EXT_PROC_SERVICE}/Process`;

/**
 * Loader options. keepCase keeps Envoy's snake_case field names; oneofs adds the name of the set
 * member (`request: 'request_body'`); enums decode as names; bytes (`raw_value`, `body`) as Buffers.
 * Trap: google.protobuf.Value keeps its camelCase members (`structValue`, `stringValue`) even
 * with keepCase; snake_case members are silently dropped.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  oneofs: true,
  enums: String,
  longs: String,
  defaults: false,
};

let extProcDef: protoLoader.PackageDefinition | undefined;

export function extProcPackage(): protoLoader.PackageDefinition {
  extProcDef ??= protoLoader.loadSync(EXT_PROC_PROTO, { ...LOADER_OPTIONS, includeDirs: envoyProtoDirs() });
  return extProcDef;
}

export function extProcService(): ServiceDefinition {
  return extProcPackage()[EXT_PROC_SERVICE] as unknown as ServiceDefinition;
}

// grpc.health.v1. No installed package ships health.proto (grpc-js-xds's googleapis folder has
// google/api and google/rpc only, and @grpc/grpc-health-check is not a dependency), so the two
// messages and the service of the standard health-checking protocol are declared here as a
// protobufjs JSON descriptor and loaded through proto-loader like any other definition.
// Wire contract: HealthCheckRequest{string service = 1}, HealthCheckResponse{ServingStatus status = 1}.
const HEALTH_DESCRIPTOR = {
  nested: {
    grpc: {
      nested: {
        health: {
          nested: {
            v1: {
              nested: {
                HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
                HealthCheckResponse: {
                  fields: { status: { type: 'ServingStatus', id: 1 } },
                  nested: {
                    ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } },
                  },
                },
                Health: {
                  methods: {
                    Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse' },
                    Watch: {
                      requestType: 'HealthCheckRequest',
                      responseType: 'HealthCheckResponse',
                      responseStream: true,
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

export const HEALTH_SERVICE = 'grpc.health.v1.Health';
let healthDef: protoLoader.PackageDefinition | undefined;

export function healthService(): ServiceDefinition {
  healthDef ??= protoLoader.fromJSON(HEALTH_DESCRIPTOR as Parameters<typeof protoLoader.fromJSON>[0], {
    ...LOADER_OPTIONS,
  });
  return healthDef[HEALTH_SERVICE] as unknown as ServiceDefinition;
}
