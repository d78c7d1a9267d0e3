// Redaction: the one function every outbound error and every log line passes through.
//
// Every credential the process holds is a Secret, and constructing a Secret registers its value
// here (an Entra token registers each access token it fetches). `redact(text)` then removes
// - each registered value and the forms providers and proxies echo it in: without its vendor
//   prefix (`sk-proj-abc…` -> `abc…`), URL-encoded, JSON-escaped, and base64-encoded inside a
//   larger value (HTTP Basic auth is base64("user:key"), so the key's base64 is found at each of
//   the three byte alignments it can sit at);
// - anything shaped like a credential even when it is not ours: OpenAI/Anthropic-style keys (also
//   masked ones: "sk-proj-****abcd"), bearer and Basic credentials, `api_key=…` pairs, JWTs
//   (Entra and other OAuth access tokens).
// Because registration happens where a credential is created, no code path can forget to add it.
// The registry keeps the most recent MAX_SECRETS distinct values (rotated keys stay redacted for
// a while); the combined pattern is rebuilt lazily, once per change, never per call.

const MIN_SECRET = 8;
const MIN_VARIANT = 12;
const MAX_SECRETS = 512;
export const REDACTED = '[redacted]';

const known = new Map<string, true>();
let compiled: RegExp | null | undefined = null;

/** Registers a credential value: from now on `redact` removes it and its variants. */
export function rememberSecret(value: string): void {
  if (value.length < MIN_SECRET) return;
  if (known.has(value)) {
    known.delete(value); // refresh its place: the oldest go first
    known.set(value, true);
    return;
  }
  known.set(value, true);
  if (known.size > MAX_SECRETS) known.delete(known.keys().next().value!);
  compiled = undefined;
}

/** The forms a credential value can be echoed in (the value itself first). */
export function secretVariants(value: string): string[] {
  const out = new Set<string>([value]);
  // Without a vendor prefix: every suffix after a '-' or '_' in the first 24 characters.
  for (let i = 0; i < Math.min(24, value.length); i++) {
    const c = value[i];
    if ((c === '-' || c === '_') && value.length - i - 1 >= MIN_VARIANT) out.add(value.slice(i + 1));
  }
  for (const v of [...out]) {
    const encoded = encodeURIComponent(v);
    if (encoded !== v) {
      out.add(encoded);
      out.add(encoded.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()));
    }
    if (v.includes('/')) out.add(v.replaceAll('/', '\\/'));
  }
  for (const b of base64Cores(value)) {
    out.add(b);
    const url = b.replaceAll('+', '-').replaceAll('/', '_');
    if (url !== b) out.add(url);
  }
  return [...out].filter((v) => v.length >= MIN_SECRET);
}

/**
 * The part of base64(prefix + value + suffix) that depends on `value` alone, for a prefix of
 * 0, 1 and 2 bytes (mod 3): a search for these finds the value inside any base64 text.
 */
function base64Cores(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const cores: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const padded = Buffer.concat([Buffer.alloc(offset), bytes]);
    const full = Math.floor(padded.length / 3) * 4; // characters of complete 3-byte groups
    const skip = offset === 0 ? 0 : 4; // the first group mixes in the prefix
    const core = padded.toString('base64').slice(skip, full);
    if (core.length >= MIN_VARIANT) cores.push(core);
  }
  return cores;
}

type Replacer = (match: string, ...groups: string[]) => string;
const GENERIC: [RegExp, Replacer][] = [
  // OpenAI sk-/sk-proj-, Anthropic sk-ant-, restricted rk-, and masked forms with '*'.
  [/\b(?:sk|rk)-[A-Za-z0-9_*.-]{3,}/g, () => REDACTED],
  [/\bBearer\s+[^\s"',;]+/gi, () => `Bearer ${REDACTED}`],
  [/\bBasic\s+[A-Za-z0-9+/=]{8,}/gi, () => `Basic ${REDACTED}`],
  [
    /\b(x-api-key|x-goog-api-key|api[-_]?key|access[-_]?token|client[-_]?secret|secret[-_]?access[-_]?key)(["']?\s*[:=]\s*["']?)[^\s"'&,;}]+/gi,
    (_m, name: string, sep: string) => `${name}${sep}${REDACTED}`,
  ],
  // JWTs (Entra ID and other OAuth access tokens).
  [/\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*/g, () => REDACTED],
];

function knownPattern(): RegExp | null {
  if (compiled !== undefined) return compiled;
  const all = new Set<string>();
  for (const value of known.keys()) for (const v of secretVariants(value)) all.add(v);
  const sorted = [...all].sort((a, b) => b.length - a.length); // longest first: no partial leftovers
  compiled = sorted.length === 0 ? null : new RegExp(sorted.map(escapeRegExp).join('|'), 'g');
  return compiled;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** `text` without any registered credential (or its variants) and without credential-shaped tokens. */
export function redact(text: string): string {
  if (text.length < MIN_SECRET) return text;
  let out = text;
  const mine = knownPattern();
  if (mine) out = out.replace(mine, REDACTED);
  for (const [re, by] of GENERIC) out = out.replace(re, by);
  return out;
}

/** `redact` for a value that may be null (error codes and params). */
export function redactNullable(text: string | null): string | null {
  return text === null ? null : redact(text);
}
