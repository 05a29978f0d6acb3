// Kubernetes resource quantities ("512Mi", "1G", 1073741824) as Tern uses them: non-negative byte counts.
import type { SchemaOptions } from '@sinclair/typebox';
import { IntOrString } from './schema.js';

/**
 * A non-negative quantity without exponent notation. Stricter than Kubernetes' own grammar on purpose: a
 * byte count in exponent form ("1e9") or with a milli suffix ("500m") is almost certainly a mistake.
 */
export const BYTE_QUANTITY_PATTERN = '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$';

/** Longest string form accepted; keeps CEL cost estimates for quantity() rules small. */
export const QUANTITY_MAX_LENGTH = 32;

/** A byte count as an integer or a quantity string. */
export const ByteQuantity = (options: SchemaOptions = {}) =>
  IntOrString({ pattern: BYTE_QUANTITY_PATTERN, maxLength: QUANTITY_MAX_LENGTH }, options);

/**
 * A CEL expression that is true when `self` (an int-or-string field) is a quantity within [min, max].
 * An unparsable value passes here so that only the pattern error is reported for it.
 */
export function quantityBoundsRule(min: string, max: string): string {
  const q = 'quantity(string(self))';
  return (
    `!isQuantity(string(self)) || ` +
    `(${q}.compareTo(quantity('${min}')) >= 0 && ${q}.compareTo(quantity('${max}')) <= 0)`
  );
}

/** Bytes per unit of each quantity suffix ('' = bytes), exact. */
export const BYTE_QUANTITY_MULTIPLIERS: Readonly<Record<string, bigint>> = {
  '': 1n,
  k: 10n ** 3n,
  M: 10n ** 6n,
  G: 10n ** 9n,
  T: 10n ** 12n,
  P: 10n ** 15n,
  E: 10n ** 18n,
  Ki: 2n ** 10n,
  Mi: 2n ** 20n,
  Gi: 2n ** 30n,
  Ti: 2n ** 40n,
  Pi: 2n ** 50n,
  Ei: 2n ** 60n,
};

const BYTE_QUANTITY_RE = new RegExp(BYTE_QUANTITY_PATTERN);

/**
 * Parses a byte quantity accepted by the CRDs into a number of bytes, rounding a fractional result up (as
 * Kubernetes does). Throws on anything the CRD pattern rejects, and on values above Number.MAX_SAFE_INTEGER.
 */
export function parseByteQuantity(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`invalid byte quantity: ${value}`);
    return value;
  }
  const match = BYTE_QUANTITY_RE.exec(value);
  if (!match) throw new Error(`invalid byte quantity: ${JSON.stringify(value)}`);
  const suffix = match[2] ?? '';
  const [whole = '0', fraction = ''] = value.slice(0, value.length - suffix.length).split('.');
  const multiplier = BYTE_QUANTITY_MULTIPLIERS[suffix] ?? 1n;
  const scale = 10n ** BigInt(fraction.length);
  const numerator = BigInt(whole + fraction) * multiplier;
  const bytes = (numerator + scale - 1n) / scale;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`byte quantity too large: ${value}`);
  return Number(bytes);
}
