// Header helpers for ext_proc messages. Rules (docs/envoy-ext-proc.md): keys arrive lower-cased;
// values arrive in `raw_value` (bytes); mutations carry `raw_value` only (setting both `value` and
// `raw_value` fails the request); only the legacy `append` BoolValue counts, unset = overwrite.
import type { HeaderMap, HeaderMutation, HeaderValueOption } from './types.js';

/** Header values are bytes on the wire; latin1 maps them 1:1 to a JS string and back. */
const ENC = 'latin1';

/**
 * Flattens an Envoy HeaderMap into lower-case name -> value. Repeated headers are joined with
 * ", " (RFC 9110 list semantics), except set-cookie which keeps the last value.
 */
export function headersToRecord(map: HeaderMap | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  const list = map?.headers;
  if (!list) return out;
  for (const h of list) {
    const key = h.key.toLowerCase();
    const value =
      h.raw_value !== undefined && h.raw_value.length > 0 ? h.raw_value.toString(ENC) : (h.value ?? '');
    const prev = out[key];
    out[key] = prev === undefined || key === 'set-cookie' ? value : `${prev}, ${value}`;
  }
  return out;
}

/** One overwriting set_headers entry with the value in raw_value only. */
export function setHeader(key: string, value: string): HeaderValueOption {
  return { header: { key: key.toLowerCase(), raw_value: Buffer.from(value, ENC) } };
}

/**
 * setHeader for values that repeat from request to request (the target's :authority, :path and
 * :scheme, x-tierflow-model and the like): the entry made last time for the same key is handed
 * out again when the value is the same, instead of a new entry and Buffer. Entries are never
 * changed once made (the encoders only read them), so answers may share one. One entry is kept
 * per key, so the cache is bounded by the keys passed here. Never for credential headers: the
 * entry outlives the request.
 */
export function repeatedHeader(key: string, value: string): HeaderValueOption {
  const last = lastEntry.get(key);
  if (last !== undefined && last.value === value) return last.entry;
  const entry = setHeader(key, value);
  lastEntry.set(key, { value, entry });
  return entry;
}

const lastEntry = new Map<string, { value: string; entry: HeaderValueOption }>();

/** One appending set_headers entry (adds a duplicate when the header exists). */
export function appendHeader(key: string, value: string): HeaderValueOption {
  return { header: { key: key.toLowerCase(), raw_value: Buffer.from(value, ENC) }, append: { value: true } };
}

/** Builds a HeaderMutation; an empty result is still a mutation (clear_route_cache needs one). */
export function headerMutation(
  set: Record<string, string> = {},
  remove: Iterable<string> = [],
): HeaderMutation {
  const m: HeaderMutation = {};
  const s = Object.entries(set).map(([k, v]) => setHeader(k, v));
  if (s.length > 0) m.set_headers = s;
  const r = [...remove].map((k) => k.toLowerCase());
  if (r.length > 0) m.remove_headers = r;
  return m;
}

/** Names of client-supplied x-tierflow-* headers: they must only ever come from us. */
export function tierflowHeaderNames(headers: Record<string, string>): string[] {
  const out: string[] = [];
  for (const k in headers) if (k.startsWith('x-tierflow-')) out.push(k);
  return out;
}

/** Hop-by-hop and framing headers a translated response must not carry over. */
export const FRAMING_HEADERS = new Set([
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'content-encoding',
]);
