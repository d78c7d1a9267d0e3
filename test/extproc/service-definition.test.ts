// The server's service definition is built from the codec's protobufjs root (not proto-loader's
// package): it must describe the same method as proto-loader reads from Envoy's protos.
import { describe, expect, it } from 'vitest';
import { fastExtProcService } from '../../src/extproc/codec.js';
import { extProcService } from '../../src/extproc/protos.js';

describe('ExternalProcessor service definition', () => {
  it('matches proto-loader on path and streaming', () => {
    const ours = fastExtProcService() as unknown as Record<
      string,
      { path: string; requestStream: boolean; responseStream: boolean }
    >;
    const reference = extProcService() as unknown as Record<
      string,
      { path: string; requestStream: boolean; responseStream: boolean }
    >;
    expect(Object.keys(ours)).toEqual(Object.keys(reference));
    for (const name of Object.keys(reference)) {
      expect(ours[name]).toMatchObject({
        path: reference[name]!.path,
        requestStream: reference[name]!.requestStream,
        responseStream: reference[name]!.responseStream,
      });
    }
    expect(ours.Process!.path).toBe('/envoy.service.ext_proc.v3.ExternalProcessor/Process');
    expect(ours.Process!.requestStream && ours.Process!.responseStream).toBe(true);
  });
});
