// String formats used by the schemas, registered with TypeBox so that `Value.Check` can validate objects
// the way the apiserver does (TypeBox rejects strings with an unknown format).
import { FormatRegistry } from '@sinclair/typebox';

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Registers the formats Tern's schemas use (date-time). Idempotent. */
export function registerFormats(): void {
  if (!FormatRegistry.Has('date-time')) {
    FormatRegistry.Set('date-time', (value) => RFC3339.test(value) && !Number.isNaN(Date.parse(value)));
  }
}
