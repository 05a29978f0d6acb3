import { Type } from '@sinclair/typebox';
import { structuralViolations, toStructural } from './openapi.js';
import type { JsonSchema } from './openapi.js';
import { ByteQuantity } from './src/quantities.js';
import { StringEnum, StringMap } from './src/schema.js';

function hasSymbols(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (Object.getOwnPropertySymbols(value).length > 0) return true;
  return Object.values(value).some(hasSymbols);
}

describe('toStructural', () => {
  it('drops TypeBox symbols and $id but keeps required and Kubernetes extensions', () => {
    const schema = Type.Object(
      { a: Type.String({ maxLength: 3 }), b: Type.Optional(Type.Integer()) },
      { $id: 'X', 'x-kubernetes-validations': [{ rule: 'true', message: 'm' }] },
    );
    expect(hasSymbols(schema)).toBe(true);
    const out = toStructural(schema);
    expect(hasSymbols(out)).toBe(false);
    expect(out).toEqual({
      type: 'object',
      'x-kubernetes-validations': [{ rule: 'true', message: 'm' }],
      required: ['a'],
      properties: { a: { type: 'string', maxLength: 3 }, b: { type: 'integer' } },
    });
  });

  it('turns a union of string literals into an enum and keeps its options', () => {
    expect(toStructural(StringEnum(['A', 'B'], { default: 'A', description: 'd' }))).toEqual({
      type: 'string',
      description: 'd',
      enum: ['A', 'B'],
      default: 'A',
    });
    expect(toStructural(Type.Literal('only'))).toEqual({ type: 'string', enum: ['only'] });
  });

  it('turns a string Record into additionalProperties', () => {
    expect(toStructural(StringMap())).toEqual({
      type: 'object',
      additionalProperties: { type: 'string', maxLength: 1024 },
    });
  });

  it('refuses patternProperties with a real pattern', () => {
    const schema = Type.Record(Type.String({ pattern: '^a' }), Type.String());
    expect(() => toStructural(schema)).toThrow(/patternProperties/);
  });

  it('hoists the validations of int-or-string branches to the property', () => {
    expect(toStructural(ByteQuantity({ description: 'q' }))).toEqual({
      description: 'q',
      'x-kubernetes-int-or-string': true,
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      maxLength: 32,
      pattern: '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$',
    });
  });

  it('refuses an int-or-string whose branches and property set the same key', () => {
    const schema = Type.Union([Type.Integer(), Type.String({ maxLength: 4 })], {
      'x-kubernetes-int-or-string': true,
      maxLength: 8,
    });
    expect(() => toStructural(schema)).toThrow(/maxLength/);
  });

  it('converts nested properties and array items', () => {
    const schema = Type.Object({ list: Type.Array(StringEnum(['x']), { maxItems: 2 }) });
    expect(toStructural(schema)).toEqual({
      type: 'object',
      required: ['list'],
      properties: { list: { type: 'array', maxItems: 2, items: { type: 'string', enum: ['x'] } } },
    });
  });
});

describe('structuralViolations', () => {
  const ok: JsonSchema = {
    type: 'object',
    properties: {
      metadata: { type: 'object' },
      name: { type: 'string', maxLength: 10 },
      when: { type: 'string', format: 'date-time' },
      labels: { type: 'object', additionalProperties: { type: 'string', maxLength: 5 } },
      qty: {
        'x-kubernetes-int-or-string': true,
        anyOf: [{ type: 'integer' }, { type: 'string' }],
        maxLength: 3,
      },
      items: {
        type: 'array',
        maxItems: 3,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
        items: { type: 'object', required: ['name'], properties: { name: { type: 'string', enum: ['a'] } } },
      },
    },
  };

  it('accepts a structural schema', () => {
    expect(structuralViolations(ok)).toEqual([]);
  });

  const cases: [string, JsonSchema, RegExp][] = [
    [
      'a node without type',
      { type: 'object', properties: { a: { maxLength: 1 } } },
      /\.a: "type" is missing/,
    ],
    [
      'properties next to additionalProperties: false',
      { type: 'object', properties: { a: { type: 'boolean' } }, additionalProperties: false },
      /<root>: "properties" and "additionalProperties" are mutually exclusive/,
    ],
    ['an object without properties', { type: 'object' }, /object without properties needs/],
    ['an object with empty properties', { type: 'object', properties: {} }, /would prune every field/],
    [
      'anyOf outside int-or-string',
      { type: 'object', properties: { a: { type: 'string', maxLength: 1, anyOf: [{ const: 'x' }] } } },
      /\.a: "anyOf" is only supported for int-or-string/,
    ],
    [
      'int-or-string with a type',
      { type: 'object', properties: { q: { type: 'string', 'x-kubernetes-int-or-string': true } } },
      /\.q: int-or-string must not set "type"/,
    ],
    [
      'int-or-string with validations inside anyOf',
      {
        type: 'object',
        properties: {
          q: {
            'x-kubernetes-int-or-string': true,
            anyOf: [{ type: 'integer' }, { type: 'string', pattern: 'x' }],
          },
        },
      },
      /\.q: int-or-string anyOf must be exactly/,
    ],
    [
      'a TypeBox-only key',
      { type: 'object', properties: { a: { type: 'string', const: 'x' } } },
      /"const" is not allowed/,
    ],
    ['a $ref', { type: 'object', properties: { a: { $ref: '#/x' } } }, /"\$ref" is not allowed/],
    [
      'a string without maxLength',
      { type: 'object', properties: { s: { type: 'string' } } },
      /\.s: string without maxLength/,
    ],
    [
      'an array without maxItems',
      { type: 'object', properties: { l: { type: 'array', items: { type: 'boolean' } } } },
      /\.l: array without maxItems/,
    ],
    [
      'a map list whose key is optional',
      {
        type: 'object',
        properties: {
          l: {
            type: 'array',
            maxItems: 1,
            'x-kubernetes-list-type': 'map',
            'x-kubernetes-list-map-keys': ['k'],
            items: { type: 'object', properties: { k: { type: 'boolean' } } },
          },
        },
      },
      /\.l: map key "k" must be required/,
    ],
    [
      'a required field that is not a property',
      { type: 'object', required: ['nope'], properties: { a: { type: 'boolean' } } },
      /required "nope" is not a property/,
    ],
    [
      'a CEL rule without message',
      {
        type: 'object',
        properties: { a: { type: 'boolean', 'x-kubernetes-validations': [{ rule: 'self' }] } },
      },
      /\.a: CEL rule "self" has no message/,
    ],
    [
      'metadata with properties',
      {
        type: 'object',
        properties: { metadata: { type: 'object', properties: { name: { type: 'string' } } } },
      },
      /\.metadata: must be exactly \{type: object\}/,
    ],
    [
      'a violation deep inside items and additionalProperties',
      {
        type: 'object',
        properties: {
          l: {
            type: 'array',
            maxItems: 1,
            items: { type: 'object', additionalProperties: { type: 'string' } },
          },
        },
      },
      /\.l\[\*\]\.\*: string without maxLength/,
    ],
  ];

  it.each(cases)('reports %s', (_name, schema, expected) => {
    const problems = structuralViolations(schema);
    expect(problems.join('\n')).toMatch(expected);
  });

  it('reports TypeBox symbols that were not converted', () => {
    const problems = structuralViolations(Type.Object({ a: Type.Boolean() }) as unknown as JsonSchema);
    expect(problems.join('\n')).toMatch(/TypeBox key Symbol\(TypeBox.Kind\)/);
  });
});
