// The demo provider's structured outputs: whatever schema a client sends, the value validates.
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { sampleFromSchema } from '../../src/gateway/schema-sample.js';

const schemas: Record<string, object> = {
  'flat object, strict mode': {
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer' }, ok: { type: 'boolean' } },
    required: ['name', 'age', 'ok'],
    additionalProperties: false,
  },
  'nested arrays, enums, nullable': {
    type: 'object',
    properties: {
      steps: {
        type: 'array',
        items: {
          type: 'object',
          properties: { explanation: { type: 'string' }, output: { type: ['string', 'null'] } },
          required: ['explanation', 'output'],
          additionalProperties: false,
        },
      },
      mood: { type: 'string', enum: ['happy', 'sad'] },
      kind: { const: 'answer' },
    },
    required: ['steps', 'mood', 'kind'],
    additionalProperties: false,
  },
  'bounds and formats': {
    type: 'object',
    properties: {
      score: { type: 'number', minimum: 3.5, maximum: 9 },
      count: { type: 'integer', exclusiveMinimum: 10, multipleOf: 5 },
      negative: { type: 'integer', maximum: -3 },
      code: { type: 'string', minLength: 12, maxLength: 20 },
      when: { type: 'string', format: 'date-time' },
      mail: { type: 'string', format: 'email' },
      tags: { type: 'array', items: { type: 'string' }, minItems: 3, maxItems: 5 },
    },
    required: ['score', 'count', 'negative', 'code', 'when', 'mail', 'tags'],
  },
  'anyOf and recursive $ref': {
    type: 'object',
    properties: {
      value: { anyOf: [{ type: 'null' }, { type: 'number' }] },
      tree: { $ref: '#/$defs/node' },
    },
    required: ['value', 'tree'],
    $defs: {
      node: {
        type: 'object',
        properties: {
          label: { type: 'string' },
          children: { type: 'array', items: { $ref: '#/$defs/node' } },
        },
        required: ['label', 'children'],
        additionalProperties: false,
      },
    },
  },
  allOf: {
    allOf: [
      { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] },
      { properties: { b: { type: 'integer', minimum: 1 } }, required: ['b'] },
    ],
  },
};

describe('sampleFromSchema', () => {
  const ajv = new Ajv({ strict: false, validateFormats: false });
  for (const [name, schema] of Object.entries(schemas)) {
    it(`gives a valid value: ${name}`, () => {
      const value = sampleFromSchema(schema);
      const valid = ajv.validate(schema, value);
      expect(ajv.errors ?? [], JSON.stringify(value)).toEqual([]);
      expect(valid).toBe(true);
    });
  }

  it('fills formats with values of that format', () => {
    const v = sampleFromSchema(schemas['bounds and formats']) as Record<string, unknown>;
    expect(Date.parse(v.when as string)).not.toBeNaN();
    expect(v.mail).toMatch(/^[^@]+@[^@]+$/);
  });
});
