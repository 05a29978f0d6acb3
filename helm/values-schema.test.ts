import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { valuesSchema } from './values-schema.js';

type Schema = {
  type?: string | string[];
  enum?: unknown[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
};

const values = parse(readFileSync(new URL('./tern/values.yaml', import.meta.url), 'utf8')) as unknown;

/** The paths of values.yaml whose schema gives no type or enum, or that the schema does not know. */
function untyped(value: unknown, schema: Schema | undefined, path: string): string[] {
  if (!schema) return [`${path}: not in the schema`];
  if (schema.type === undefined && schema.enum === undefined) return [`${path}: no type or enum`];
  if (Array.isArray(value)) return value.flatMap((item, i) => untyped(item, schema.items, `${path}[${i}]`));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, child]) => {
      const sub =
        schema.properties?.[key] ??
        (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
      return untyped(child, sub, `${path}.${key}`);
    });
  }
  return [];
}

test('every value in values.yaml has a type or an enum in the schema', () => {
  expect(untyped(values, valuesSchema as Schema, 'values')).toEqual([]);
});

test('every object with fixed keys refuses unknown keys', () => {
  const open: string[] = [];
  const walk = (schema: Schema, path: string): void => {
    if (schema.properties && schema.additionalProperties !== false) open.push(path);
    for (const [key, sub] of Object.entries(schema.properties ?? {})) walk(sub, `${path}.${key}`);
    if (schema.items) walk(schema.items, `${path}[]`);
  };
  walk(valuesSchema as Schema, 'values');
  expect(open).toEqual([]);
});
