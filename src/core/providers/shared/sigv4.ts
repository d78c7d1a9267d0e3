// AWS Signature Version 4 (header form), synchronous (node:crypto HMAC, following the SigV4 spec).
// test/unit/translators-bedrock.test.ts checks it byte for byte against @smithy/signature-v4 for
// the same inputs and date. Used by the Bedrock provider (service "bedrock"); nothing here knows
// about Bedrock.
import { createHash, createHmac } from 'node:crypto';

export interface SigV4Input {
  method: string;
  url: URL;
  /** Headers to sign (lower-case names), host excluded: it is taken from the URL. */
  headers: Record<string, string>;
  body: Buffer;
  region: string;
  service: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
  date: Date;
}

/** RFC 3986 encoding as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
export const uriEscape = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer =>
  createHmac('sha256', key).update(data, 'utf8').digest();

function canonicalPath(path: string): string {
  const segments: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segments.pop();
    else segments.push(seg);
  }
  const normalized = `${path.startsWith('/') ? '/' : ''}${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  // The wire path is already percent-encoded once; SigV4 (every service but S3) encodes it again.
  return uriEscape(normalized).replace(/%2F/g, '/');
}

function canonicalQuery(url: URL): string {
  const pairs: [string, string][] = [];
  for (const [k, v] of url.searchParams) pairs.push([uriEscape(k), uriEscape(v)]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/**
 * Signs a request with AWS Signature Version 4 (header form). Returns the headers to add:
 * authorization, x-amz-date, x-amz-content-sha256 and, with temporary credentials,
 * x-amz-security-token.
 */
export function signSigV4(i: SigV4Input): Record<string, string> {
  const amzDate = i.date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
  const shortDate = amzDate.slice(0, 8);
  const payloadHash = sha256Hex(i.body);
  const added: Record<string, string> = { 'x-amz-date': amzDate, 'x-amz-content-sha256': payloadHash };
  if (i.sessionToken) added['x-amz-security-token'] = i.sessionToken;
  const all: Record<string, string> = { ...i.headers, ...added, host: i.url.host };
  const names = Object.keys(all)
    .map((n) => n.toLowerCase())
    .sort();
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(all)) lower[k.toLowerCase()] = v;
  const canonicalHeaders = names
    .map(
      (n) =>
        `${n}:${lower[n]!.replace(/[\r\n]/g, ' ')
          .replace(/[ \t]+/g, ' ')
          .trim()}`,
    )
    .join('\n');
  const signedHeaders = names.join(';');
  const canonicalRequest = [
    i.method,
    canonicalPath(i.url.pathname),
    canonicalQuery(i.url),
    canonicalHeaders,
    '',
    signedHeaders,
    payloadHash,
  ].join('\n');
  const scope = `${shortDate}/${i.region}/${i.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const kDate = hmac(`AWS4${i.secretAccessKey}`, shortDate);
  const kSigning = hmac(hmac(hmac(kDate, i.region), i.service), 'aws4_request');
  const signature = createHmac('sha256', kSigning).update(stringToSign, 'utf8').digest('hex');
  added.authorization = `AWS4-HMAC-SHA256 Credential=${i.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return added;
}
