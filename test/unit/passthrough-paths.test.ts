import { describe, expect, it } from 'vitest';
import { isAllowedPassthroughPath } from '../../src/core/passthrough-paths.js';
import { classifyPath } from '../../src/extproc/processor.js';

describe('pass-through allow-list (without relying on Envoy normalising paths)', () => {
  it('allows OpenAI API resources and their ids', () => {
    for (const rest of [
      '/images/generations',
      '/moderations',
      '/files/file-abc123/content',
      '/batches/batch_1/cancel?x=1',
      '/audio/transcriptions',
      '/models/ft:gpt-4o-mini:org::abc',
      '/responses/resp_1/input_items',
    ]) {
      expect(isAllowedPassthroughPath(rest), rest).toBe(true);
      expect(classifyPath('POST', '/v1' + rest).kind, rest).toBe('passthrough');
    }
  });

  it('refuses anything that could leave the base path or is not an OpenAI resource', () => {
    for (const rest of [
      '/../../etc/passwd',
      '/embeddings/../../etc/passwd',
      '/files/./x',
      '/files//x',
      '/files/%2e%2e/x',
      '/files/..%2fadmin',
      '/files\\..\\admin',
      '/files/.hidden',
      '/admin',
      '/',
      '/embeddings#frag',
      '/a/b/c/d/e/f/g',
    ]) {
      expect(isAllowedPassthroughPath(rest), rest).toBe(false);
      const c = classifyPath('POST', '/v1' + rest);
      expect(c.kind, rest).toBe('reject');
      expect(c.error?.status, rest).toBe(404);
    }
  });
});
