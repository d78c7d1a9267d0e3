import { describe, expect, it } from 'vitest';
import { repeatedHeader, setHeader } from '../../src/extproc/headers.js';

describe('repeatedHeader', () => {
  it('hands out the same entry for the same key and value, a new one when the value changes', () => {
    const a = repeatedHeader('x-tierflow-model', 'mini');
    expect(a).toEqual(setHeader('x-tierflow-model', 'mini'));
    expect(repeatedHeader('x-tierflow-model', 'mini')).toBe(a);
    const b = repeatedHeader('x-tierflow-model', 'big');
    expect(b).not.toBe(a);
    expect(b.header!.raw_value!.toString('latin1')).toBe('big');
    // the earlier entry is untouched (answers that hold it still say 'mini')
    expect(a.header!.raw_value!.toString('latin1')).toBe('mini');
    expect(repeatedHeader('x-tierflow-tier', 'big')).not.toBe(b);
  });
});
