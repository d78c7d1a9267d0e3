// The subset of envoy.service.ext_proc.v3 messages TierFlow reads and writes, as proto-loader
// decodes and encodes them with protos.ts LOADER_OPTIONS (snake_case, enums as names, bytes as Buffer).
import type { SplicedBody } from '../core/raw-json.js';

export interface HeaderValue {
  key: string;
  /** Envoy sends values here (bytes). We only ever write this member. */
  raw_value?: Buffer;
  /** Legacy string member: never written by TierFlow (Envoy fails the request if both are set). */
  value?: string;
}

export interface HeaderMap {
  headers?: HeaderValue[];
}

export interface HttpHeaders {
  headers?: HeaderMap;
  end_of_stream?: boolean;
  /** The headers as headersToRecord makes them, when the decoder made them already (request-decoder.ts). */
  record?: Record<string, string>;
}

export interface HttpBody {
  body?: Buffer;
  end_of_stream?: boolean;
}

export interface HttpTrailers {
  trailers?: HeaderMap;
}

export type RequestKind =
  | 'request_headers'
  | 'response_headers'
  | 'request_body'
  | 'response_body'
  | 'request_trailers'
  | 'response_trailers';

export interface ProcessingRequest {
  request?: RequestKind;
  request_headers?: HttpHeaders;
  response_headers?: HttpHeaders;
  request_body?: HttpBody;
  response_body?: HttpBody;
  request_trailers?: HttpTrailers;
  response_trailers?: HttpTrailers;
  observability_mode?: boolean;
}

export interface HeaderValueOption {
  header: HeaderValue;
  /** google.protobuf.BoolValue; the only append switch ext_proc honours. Unset = overwrite. */
  append?: { value: boolean };
}

export interface HeaderMutation {
  set_headers?: HeaderValueOption[];
  remove_headers?: string[];
}

export interface BodyMutation {
  /** A SplicedBody is written into the answer piece by piece (answer-encoder.ts). */
  body?: Buffer | SplicedBody;
  clear_body?: boolean;
}

export interface CommonResponse {
  status?: 'CONTINUE' | 'CONTINUE_AND_REPLACE';
  header_mutation?: HeaderMutation;
  body_mutation?: BodyMutation;
  clear_route_cache?: boolean;
}

export interface HeadersResponse {
  response?: CommonResponse;
}
export interface BodyResponse {
  response?: CommonResponse;
}
export interface TrailersResponse {
  header_mutation?: HeaderMutation;
}

export interface ImmediateResponse {
  /** envoy.type.v3.HttpStatus; `code` is the StatusCode enum, written by name or number. */
  status: { code: number | string };
  headers?: HeaderMutation;
  body?: Buffer;
  details?: string;
}

export type HeaderSendMode = 'DEFAULT' | 'SEND' | 'SKIP';
export type BodySendMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL';

export interface ProcessingMode {
  request_header_mode: HeaderSendMode;
  response_header_mode: HeaderSendMode;
  request_body_mode: BodySendMode;
  response_body_mode: BodySendMode;
  request_trailer_mode: HeaderSendMode;
  response_trailer_mode: HeaderSendMode;
}

/** google.protobuf.Struct as proto-loader wants it: Value members stay camelCase. */
export interface PbStruct {
  fields: Record<string, PbValue>;
}
export type PbValue =
  | { stringValue: string }
  | { numberValue: number }
  | { boolValue: boolean }
  | { structValue: PbStruct }
  | { nullValue: 'NULL_VALUE' };

export interface ProcessingResponse {
  request_headers?: HeadersResponse;
  response_headers?: HeadersResponse;
  request_body?: BodyResponse;
  response_body?: BodyResponse;
  request_trailers?: TrailersResponse;
  response_trailers?: TrailersResponse;
  immediate_response?: ImmediateResponse;
  dynamic_metadata?: PbStruct;
  mode_override?: ProcessingMode;
  /** google.protobuf.Duration: asks Envoy to extend the current message timer (once per message). */
  override_message_timeout?: { seconds: string | number; nanos?: number };
}
