import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/core/errors.js';
import { redact, rememberSecret, secretVariants } from '../../src/core/redact.js';
import { Secret } from '../../src/core/secret.js';
import { createLogger } from '../../src/observe/log.js';

const KEY = 'sk-proj-Zq8vN3kLm2Pw7Xr4Ty6Ub1Hc9Jd5Fg0A';
new Secret(KEY);

describe('redact', () => {
  it('removes a registered key and its echoed forms', () => {
    const bare = KEY.slice('sk-proj-'.length);
    const basic = Buffer.from(`user:${KEY}`).toString('base64');
    const basicEmptyUser = Buffer.from(`:${KEY}`).toString('base64');
    const basicKeyFirst = Buffer.from(`${KEY}:x`).toString('base64');
    for (const text of [
      `key ${KEY} refused`,
      `key ${bare} refused`,
      `key=${encodeURIComponent(KEY + '/+')}`,
      `authorization: Basic ${basic}`,
      `proxy said ${basic}`, // no "Basic" word: found by the key's own base64 forms
      `proxy said ${basicEmptyUser}`,
      `proxy said ${basicKeyFirst}`,
    ]) {
      const out = redact(text);
      expect(out, text).not.toContain(bare);
      expect(out, text).not.toContain(basic);
      expect(out, text).toContain('[redacted]');
    }
    expect(redact(`proxy said ${basicEmptyUser}`)).not.toContain(basicEmptyUser.slice(4, -4));
  });

  it('covers AWS secret keys (with / and +) URL-encoded and JSON-escaped', () => {
    const aws = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY+9';
    new Secret(aws);
    for (const text of [
      aws,
      encodeURIComponent(aws),
      encodeURIComponent(aws).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
      aws.replaceAll('/', '\\/'),
    ]) {
      expect(redact(`signature over ${text} failed`)).not.toMatch(/EXAMPLEKEY/i);
    }
  });

  it('covers Entra access tokens, registered or not (JWT shape)', () => {
    const jwt =
      'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2NvZ25pdGl2ZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl';
    expect(redact(`token ${jwt} expired`)).toBe('token [redacted] expired');
    const opaque = 'azure-opaque-token-0123456789abcdef';
    rememberSecret(opaque);
    expect(redact(`api-key ${opaque}`)).not.toContain('0123456789abcdef');
  });

  it('removes key-shaped tokens that are not registered, keeps ordinary text', () => {
    expect(redact('Incorrect API key provided: sk-proj-****abcd')).toBe(
      'Incorrect API key provided: [redacted]',
    );
    expect(redact('Authorization: Bearer abc.def-ghi')).toBe('Authorization: Bearer [redacted]');
    expect(redact('{"x-goog-api-key":"AIzaSyD-whatever"}')).toBe('{"x-goog-api-key":"[redacted]"}');
    const plain = 'The model `gpt-4o` does not exist or you do not have access to it (invalid_api_key).';
    expect(redact(plain)).toBe(plain);
  });

  it('variants: a short suffix is not a variant (no over-redaction of common words)', () => {
    const v = secretVariants('sk-alpha-secret');
    expect(v).toContain('alpha-secret');
    expect(v).not.toContain('secret');
  });

  it('ApiError redacts every field; the logger redacts every line', () => {
    const e = new ApiError(400, `m ${KEY}`, `t_${KEY}`, `c_${KEY}`, `p_${KEY}`);
    expect(JSON.stringify(e.toBody())).not.toContain(KEY.slice(8));
    const lines: string[] = [];
    createLogger('info', {}, (l) => lines.push(l)).info('x', { error: `c_${KEY}`, deep: { k: KEY } });
    expect(lines[0]).not.toContain(KEY.slice(8));
    expect(lines[0]).toContain('[redacted]');
  });
});
