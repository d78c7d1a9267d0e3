// The server's service definition is built from the codec's protobufjs root (not proto-loader's
// package): it must describe the same method as proto-loader reads from Envoy's protos.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { extProcCodec, fastExtProcService } from '../../src/extproc/codec.js';
import type { ProcessingResponse } from '../../src/extproc/types.js';
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

  it('answers through a reused buffer that grpc-js copies into its frame before the next answer', () => {
    const c = extProcCodec();
    const serialize = (
      fastExtProcService() as unknown as Record<string, { responseSerialize(r: unknown): Buffer }>
    ).Process!.responseSerialize;
    const answer = (fill: number): ProcessingResponse => ({
      request_body: { response: { status: 'CONTINUE', body_mutation: { body: Buffer.alloc(6000, fill) } } },
    });
    // The answers share one buffer (what this relies on grpc-js for)...
    const first = serialize(answer(1));
    expect(serialize(answer(2)).buffer).toBe(first.buffer);
    // ...and grpc-js's serializer (internal to @grpc/grpc-js) copies each into the frame it sends.
    const require = createRequire(import.meta.url);
    const grpcInternals = require('@grpc/grpc-js/build/src/server-interceptors.js') as {
      BaseServerInterceptingCall: { prototype: { serializeMessage(this: unknown, value: unknown): Buffer } };
    };
    const call = { handler: { serialize } };
    const frame = grpcInternals.BaseServerInterceptingCall.prototype.serializeMessage.call(call, answer(3));
    const copy = Buffer.from(frame);
    serialize(answer(4));
    expect(frame).toEqual(copy);
    expect(c.decodeResponse(frame.subarray(5))).toEqual(c.decodeResponse(c.encodeResponse(answer(3))));
    expect(frame.readUInt32BE(1)).toBe(frame.length - 5);
  });
});
