// Which requests besides chat completions the sidecar passes through to an OpenAI-wire provider,
// with that provider's key. Only OpenAI API resources, and only paths that cannot leave the
// provider's base path: every segment is a plain name or id (no empty, `.` or `..` segment, no
// percent-escapes, no backslash), so `base + rest` always stays under `base`. Envoy normalises
// paths before we see them (normalize_path, merge_slashes); this check does not rely on it.

/**
 * First path segment after /v1 of the OpenAI API resources that may pass through. Chat
 * completions, embeddings and POST /v1/responses are routed, never passed through.
 */
const RESOURCES = new Set([
  'assistants',
  'audio',
  'batches',
  'completions',
  'containers',
  'conversations',
  'files',
  'fine_tuning',
  'images',
  'models', // GET /v1/models/{id}; the list itself is answered by TierFlow
  'moderations',
  'responses',
  'threads',
  'uploads',
  'vector_stores',
]);

/** A resource name or id: letters, digits and `_ . : -`, not starting with a dot. */
const SEGMENT = /^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,255}$/;
const MAX_SEGMENTS = 6;

/**
 * `rest` is the path after `/v1` (query included), e.g. `/moderations` or `/files/file-abc/content?x=1`.
 * True when it names an allowed OpenAI API resource and nothing else.
 */
export function isAllowedPassthroughPath(rest: string): boolean {
  const q = rest.indexOf('?');
  const path = q === -1 ? rest : rest.slice(0, q);
  if (path.length < 2 || path.charCodeAt(0) !== 0x2f || path.includes('#')) return false;
  const segments = path.slice(1).split('/');
  if (segments.length > MAX_SEGMENTS || !RESOURCES.has(segments[0]!)) return false;
  return segments.every((s) => SEGMENT.test(s));
}
