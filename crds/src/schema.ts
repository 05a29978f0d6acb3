// TypeBox building blocks whose JSON Schema the generator (crds/openapi.ts) turns into Kubernetes structural
// OpenAPI. They stay plain TypeBox kinds (Union, Literal, Record) so that `Value.Check` works on them too.
import { Type } from '@sinclair/typebox';
import type { SchemaOptions, TLiteral, TRecord, TString, TUnion, TInteger } from '@sinclair/typebox';

/** A string restricted to `values`; rendered as `type: string` + `enum`. */
export function StringEnum<const T extends readonly [string, ...string[]]>(
  values: T,
  options: SchemaOptions = {},
): TUnion<TLiteral<T[number]>[]> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    options,
  ) as TUnion<TLiteral<T[number]>[]>;
}

/** A map of strings (labels, node selectors); rendered as `additionalProperties: {type: string}`. */
export function StringMap(options: SchemaOptions = {}): TRecord<TString, TString> {
  return Type.Record(Type.String(), Type.String({ maxLength: 1024 }), options);
}

/**
 * An integer or a string, rendered as `x-kubernetes-int-or-string: true`. The string branch carries the
 * pattern; the generator hoists it to the property, where the apiserver applies it to strings only.
 */
export function IntOrString(
  stringOptions: { pattern: string; maxLength: number },
  options: SchemaOptions = {},
): TUnion<[TInteger, TString]> {
  return Type.Union([Type.Integer(), Type.String(stringOptions)], {
    ...options,
    'x-kubernetes-int-or-string': true,
  });
}

/** A `x-kubernetes-validations` entry: a CEL rule and the message the apiserver returns when it is false. */
export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

export function cel(...rules: CelRule[]): { 'x-kubernetes-validations': CelRule[] } {
  return { 'x-kubernetes-validations': rules };
}

/** An RFC 3339 timestamp, as Kubernetes serialises metav1.Time. */
export const Timestamp = (options: SchemaOptions = {}) => Type.String({ format: 'date-time', ...options });
