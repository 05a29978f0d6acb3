// Turns TypeBox JSON Schema into Kubernetes structural OpenAPI v3 and checks the rules the apiserver
// enforces on CRD schemas, so that a mistake fails `npm test` instead of `kubectl apply` on a cluster.
import type { TSchema } from '@sinclair/typebox';

export type JsonSchema = { [key: string]: unknown };

/** Keys of apiextensions.k8s.io/v1 JSONSchemaProps that Tern's schemas may use. */
const ALLOWED_KEYS = new Set([
  'type',
  'format',
  'description',
  'default',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'enum',
  'required',
  'properties',
  'additionalProperties',
  'items',
  'anyOf',
  'nullable',
]);

const TYPEBOX_ONLY_KEYS = new Set(['$id', '$schema']);

/** Key order of the generated YAML: what a reader looks for first, nested schemas last. */
const KEY_ORDER = [
  'type',
  'description',
  'x-kubernetes-int-or-string',
  'anyOf',
  'format',
  'enum',
  'default',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-validations',
  'required',
  'properties',
  'additionalProperties',
  'items',
];

function rank(key: string): number {
  const i = KEY_ORDER.indexOf(key);
  return i === -1 ? KEY_ORDER.indexOf('required') - 0.5 : i;
}

function ordered(schema: JsonSchema): JsonSchema {
  return Object.fromEntries(Object.entries(schema).sort(([a], [b]) => rank(a) - rank(b)));
}

function isPlainObject(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mapValues(value: JsonSchema, fn: (v: JsonSchema) => JsonSchema): JsonSchema {
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fn(v as JsonSchema)]));
}

/** `anyOf` of string literals (TypeBox's Union of Literal) as a plain enum. */
function literalUnionValues(anyOf: unknown): string[] | undefined {
  if (!Array.isArray(anyOf) || anyOf.length === 0) return undefined;
  const values: string[] = [];
  for (const branch of anyOf) {
    if (!isPlainObject(branch) || branch.type !== 'string' || typeof branch.const !== 'string')
      return undefined;
    values.push(branch.const);
  }
  return values;
}

/**
 * Converts one TypeBox schema node (and its children) to structural OpenAPI:
 * - TypeBox's symbol keys (left behind by Object.entries) (Kind, Optional, …) and `$id`/`$schema` are dropped;
 * - `Union` of string `Literal`s becomes `type: string` + `enum`, a lone `Literal` a one-value enum;
 * - `Record` (patternProperties with the catch-all key) becomes `additionalProperties`;
 * - an int-or-string union keeps `anyOf: [{type: integer}, {type: string}]` and its branches' validations
 *   move up to the property, the only form the apiserver accepts.
 */
export function toStructural(schema: TSchema | JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (TYPEBOX_ONLY_KEYS.has(key)) continue;
    out[key] = value;
  }
  const enumValues = literalUnionValues(out.anyOf);
  if (enumValues) {
    delete out.anyOf;
    return ordered({ type: 'string', ...out, enum: enumValues });
  }
  if ('const' in out) {
    const { const: value, ...rest } = out;
    return ordered({ ...rest, enum: [value] });
  }
  if (out['x-kubernetes-int-or-string'] === true && Array.isArray(out.anyOf)) {
    for (const branch of out.anyOf as JsonSchema[]) {
      for (const [key, value] of Object.entries(branch)) {
        if (key === 'type') continue;
        if (key in out) throw new Error(`int-or-string: "${key}" is set on both the property and a branch`);
        out[key] = value;
      }
    }
    out.anyOf = (out.anyOf as JsonSchema[]).map((branch) => ({ type: branch.type }));
    return ordered(out);
  }
  if (isPlainObject(out.patternProperties)) {
    const entries = Object.entries(out.patternProperties);
    const [pattern, valueSchema] = entries[0] ?? [];
    if (entries.length !== 1 || pattern !== '^(.*)$') {
      throw new Error(
        `patternProperties ${JSON.stringify(Object.keys(out.patternProperties))} has no CRD form`,
      );
    }
    delete out.patternProperties;
    out.additionalProperties = toStructural(valueSchema as JsonSchema);
  }
  if (isPlainObject(out.properties)) out.properties = mapValues(out.properties, toStructural);
  if (isPlainObject(out.items)) out.items = toStructural(out.items);
  return ordered(out);
}

/**
 * Structural-schema violations in an already converted schema, as "path: problem" strings. Covers the
 * rules of https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
 * #specifying-a-structural-schema that TypeBox can break, plus Tern's own: every string that a CEL rule can
 * reach is bounded (CEL cost estimation), and array lists declare their list type.
 */
export function structuralViolations(schema: JsonSchema, path = ''): string[] {
  const at = path || '<root>';
  // The apiserver owns ObjectMeta's schema; a CRD may only declare the root metadata as an object.
  if (path === '.metadata') {
    return JSON.stringify(schema) === '{"type":"object"}' ? [] : [`${at}: must be exactly {type: object}`];
  }
  const problems: string[] = [];
  for (const key of Object.keys(schema)) {
    if (!ALLOWED_KEYS.has(key) && !key.startsWith('x-kubernetes-'))
      problems.push(`${at}: "${key}" is not allowed`);
  }
  for (const symbol of Object.getOwnPropertySymbols(schema)) {
    problems.push(`${at}: TypeBox key ${String(symbol)} left in the schema`);
  }
  const intOrString = schema['x-kubernetes-int-or-string'] === true;
  const preserveUnknown = schema['x-kubernetes-preserve-unknown-fields'] === true;
  if (intOrString) {
    if ('type' in schema) problems.push(`${at}: int-or-string must not set "type"`);
    const anyOf = JSON.stringify(schema.anyOf);
    if (schema.anyOf !== undefined && anyOf !== '[{"type":"integer"},{"type":"string"}]') {
      problems.push(
        `${at}: int-or-string anyOf must be exactly [{type: integer}, {type: string}], got ${anyOf}`,
      );
    }
  } else {
    if (typeof schema.type !== 'string') problems.push(`${at}: "type" is missing`);
    if ('anyOf' in schema) problems.push(`${at}: "anyOf" is only supported for int-or-string`);
  }
  if (schema.type === 'object') {
    const hasProperties = isPlainObject(schema.properties);
    const hasAdditional = 'additionalProperties' in schema;
    if (hasProperties && hasAdditional) {
      problems.push(`${at}: "properties" and "additionalProperties" are mutually exclusive`);
    }
    if (!hasProperties && !isPlainObject(schema.additionalProperties) && !preserveUnknown) {
      problems.push(
        `${at}: object without properties needs additionalProperties or x-kubernetes-preserve-unknown-fields`,
      );
    }
    if (hasProperties && Object.keys(schema.properties as JsonSchema).length === 0 && !preserveUnknown) {
      problems.push(`${at}: object with empty properties would prune every field`);
    }
  }
  if (schema.type === 'string' && schema.enum === undefined && typeof schema.maxLength !== 'number') {
    if (schema.format !== 'date-time') problems.push(`${at}: string without maxLength`);
  }
  if (schema.type === 'array') {
    if (typeof schema.maxItems !== 'number') problems.push(`${at}: array without maxItems`);
    if (!isPlainObject(schema.items)) problems.push(`${at}: array without items`);
  }
  const listType = schema['x-kubernetes-list-type'];
  if (listType === 'map') {
    const keys = schema['x-kubernetes-list-map-keys'];
    const items = schema.items as JsonSchema | undefined;
    const required = Array.isArray(items?.required) ? (items.required as string[]) : [];
    if (!Array.isArray(keys) || keys.length === 0) problems.push(`${at}: list-type map needs list-map-keys`);
    else
      for (const k of keys as string[])
        if (!required.includes(k)) problems.push(`${at}: map key "${k}" must be required`);
  }
  if (Array.isArray(schema.required) && isPlainObject(schema.properties)) {
    for (const name of schema.required as string[]) {
      if (!(name in schema.properties)) problems.push(`${at}: required "${name}" is not a property`);
    }
  }
  for (const rule of (schema['x-kubernetes-validations'] as { rule?: unknown; message?: unknown }[]) ?? []) {
    if (typeof rule.rule !== 'string' || rule.rule === '')
      problems.push(`${at}: CEL rule without expression`);
    if (typeof rule.message !== 'string' || rule.message === '') {
      problems.push(`${at}: CEL rule "${String(rule.rule)}" has no message`);
    }
  }
  if (isPlainObject(schema.properties)) {
    for (const [name, child] of Object.entries(schema.properties)) {
      problems.push(...structuralViolations(child as JsonSchema, `${path}.${name}`));
    }
  }
  if (isPlainObject(schema.additionalProperties)) {
    problems.push(...structuralViolations(schema.additionalProperties, `${path}.*`));
  }
  if (isPlainObject(schema.items)) problems.push(...structuralViolations(schema.items, `${path}[*]`));
  return problems;
}
