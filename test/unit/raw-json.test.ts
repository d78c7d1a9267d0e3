import { describe, expect, it } from 'vitest';
import { rewriteModel, topLevelModelSpans } from '../../src/core/raw-json.js';

const rw = (text: string, model: string, first?: string) =>
  rewriteModel(Buffer.from(text), model, first)?.toString();

describe('rewriteModel', () => {
  it('replaces the top-level model and keeps every other byte', () => {
    const text =
      '{ "messages": [{"role":"user","content":"say \\"model\\": \\"x\\""}],\n "model" : "auto", "n": 1 }';
    const out = rw(text, 'gpt-4o-mini')!;
    expect(out).toBe(text.replace('"auto"', '"gpt-4o-mini"'));
    expect(JSON.parse(out)).toEqual({ ...JSON.parse(text), model: 'gpt-4o-mini' });
  });

  it('leaves nested "model" keys alone and replaces every top-level one (JSON.parse takes the last)', () => {
    const text = '{"model":"a","tools":[{"model":"nested"}],"metadata":{"model":"m"},"model":"b"}';
    const out = JSON.parse(rw(text, 'up')!);
    expect(out.model).toBe('up');
    expect(out.tools[0].model).toBe('nested');
    expect(out.metadata.model).toBe('m');
    expect(rw(text, 'up')!.match(/"up"/g)).toHaveLength(2);
  });

  it('escapes the new value and inserts a first member', () => {
    const out = rw('{"model":"auto","stream":true}', 'we"ird\\', '"stream_options":{"include_usage":true}')!;
    expect(JSON.parse(out)).toEqual({
      stream_options: { include_usage: true },
      model: 'we"ird\\',
      stream: true,
    });
  });

  it('handles escaped quotes and backslashes inside strings before the key', () => {
    const text =
      '{"messages":[{"role":"user","content":"a\\\\"},{"role":"user","content":"\\\\\\"}{,"}],"model":"auto"}';
    expect(JSON.parse(rw(text, 'x')!)).toEqual({ ...JSON.parse(text), model: 'x' });
  });

  it('declines what it cannot rewrite with certainty', () => {
    expect(rw('{"mod\\u0065l":"auto","messages":[]}', 'x')).toBeUndefined(); // escaped key
    expect(rw('{"messages":[]}', 'x')).toBeUndefined(); // no model
    expect(rw('{"model":null,"messages":[]}', 'x')).toBeUndefined();
    expect(topLevelModelSpans(Buffer.from('{"model":"a'))).toBeUndefined(); // unterminated
  });

  it('works on UTF-8 text of any script', () => {
    const text = '{"messages":[{"role":"user","content":"héllo 世界 🎉 \\"quoted\\""}],"model":"ünïcode"}';
    const out = rw(text, 'モデル')!;
    expect(JSON.parse(out)).toEqual({ ...JSON.parse(text), model: 'モデル' });
  });
});
