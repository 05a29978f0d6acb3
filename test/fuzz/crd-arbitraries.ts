// fast-check arbitraries for objects the CRDs accept, written by hand after the TypeBox schemas in crds/src/. The
// structural part of each schema is what TypeBox's Value.Check tests (the tests check every generated object with
// it); the CEL rules (x-kubernetes-validations), which Value.Check ignores, are followed here and spelled out in
// the `…Cel` predicates below.
import fc from 'fast-check';
import {
  BANDWIDTH_MAX,
  BYTE_QUANTITY_PATTERN,
  DNS1123_LABEL_MAX_LENGTH,
  DOWNTIME_MS_MIN,
  DOWNTIME_TARGET_MS_MAX,
  MAX_DOWNTIME_MS_MAX,
  MULTIFD_CHANNELS_MAX,
  POLICY_PRIORITY_MAX,
  POLICY_PRIORITY_MIN,
  QUANTITY_MAX_LENGTH,
  UNLIMITED_BANDWIDTH,
  type MigrationSettings,
} from '../../crds/index.js';

const SUFFIXES = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei', 'k', 'M', 'G', 'T', 'P', 'E'] as const;
const MULTIPLIERS: Record<string, bigint> = {
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
const QUANTITY = new RegExp(BYTE_QUANTITY_PATTERN);

/** A quantity's exact value as a fraction (numerator, denominator), as CEL's quantity() compares it. */
export function exactQuantity(value: string | number): { num: bigint; den: bigint } {
  if (typeof value === 'number') return { num: BigInt(value), den: 1n };
  const match = QUANTITY.exec(value);
  if (!match) throw new Error(`not a byte quantity: ${value}`);
  const suffix = match[2] ?? '';
  const [whole = '0', fraction = ''] = value.slice(0, value.length - suffix.length).split('.');
  return { num: BigInt(whole + fraction) * MULTIPLIERS[suffix]!, den: 10n ** BigInt(fraction.length) };
}

/** compareTo of two quantities: -1, 0 or 1. */
export function compareQuantity(a: string | number, b: string | number): number {
  const [x, y] = [exactQuantity(a), exactQuantity(b)];
  const [l, r] = [x.num * y.den, y.num * x.den];
  return l < r ? -1 : l > r ? 1 : 0;
}

/**
 * Byte quantities the CRDs' pattern accepts (at most QUANTITY_MAX_LENGTH characters), biased to the interesting
 * ones: round values, fractions, huge values, and the bounds given.
 */
export function byteQuantityString(interesting: readonly string[] = []): fc.Arbitrary<string> {
  const digits = (max: number) =>
    fc.oneof(
      fc.integer({ min: 0, max: 4096 }).map(String),
      fc.stringMatching(new RegExp(`^[0-9]{1,${max}}$`)),
    );
  const built = fc
    .tuple(
      digits(24),
      fc.option(fc.stringMatching(/^[0-9]{1,12}$/), { nil: undefined }),
      fc.constantFrom(...SUFFIXES),
    )
    .map(([whole, fraction, suffix]) => `${whole}${fraction === undefined ? '' : `.${fraction}`}${suffix}`)
    .filter((q) => q.length <= QUANTITY_MAX_LENGTH);
  return interesting.length > 0 ? fc.oneof(built, fc.constantFrom(...interesting)) : built;
}

/** int64 values as JSON numbers arrive in JavaScript (beyond 2^53 they are inexact, yet integers). */
export const int64 = (min: number): fc.Arbitrary<number> =>
  fc.oneof(
    fc.integer({ min, max: 2 ** 31 - 1 }),
    fc.constantFrom(2 ** 40, 2 ** 40 + 1, 2 ** 53 - 1, 2 ** 53, 2 ** 62, 1.5 * 2 ** 62),
    fc.maxSafeNat().filter((n) => n >= min),
  );

/** MigrationSettings.bandwidth's CEL rules: "unlimited", 0, or from 1Mi to BANDWIDTH_MAX. */
export function bandwidthCel(value: string | number): boolean {
  if (value === UNLIMITED_BANDWIDTH) return true;
  if (compareQuantity(value, BANDWIDTH_MAX) > 0) return false;
  return compareQuantity(value, 0) === 0 || compareQuantity(value, '1Mi') >= 0;
}

export function migrationSettingsCel(settings: MigrationSettings): boolean {
  if (settings.bandwidth !== undefined && !bandwidthCel(settings.bandwidth)) return false;
  const { downtimeTargetMs, maxDowntimeMs } = settings;
  return downtimeTargetMs === undefined || maxDowntimeMs === undefined || maxDowntimeMs >= downtimeTargetMs;
}

const optional = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined });

/** MigrationSettings the CRD accepts (Migration.spec.overrides, MigrationPolicy.spec.settings). */
export const migrationSettings: fc.Arbitrary<MigrationSettings> = fc
  .record(
    {
      bandwidth: fc.oneof(
        fc.constant(UNLIMITED_BANDWIDTH),
        int64(0),
        byteQuantityString(['0', '1Mi', '1Ti', '1099511627777', '2Ti', '8E', '9.9E', '16Ei']),
      ),
      downtimeTargetMs: fc.integer({ min: DOWNTIME_MS_MIN, max: DOWNTIME_TARGET_MS_MAX }),
      maxDowntimeMs: fc.integer({ min: DOWNTIME_MS_MIN, max: MAX_DOWNTIME_MS_MAX }),
      completionTimeoutPerGiBSeconds: fc.integer({ min: 1, max: 3600 }),
      stallTimeoutSeconds: fc.integer({ min: 1, max: 3600 }),
      allowAutoConverge: fc.boolean(),
      allowPostCopy: fc.boolean(),
      multifdChannels: fc.integer({ min: 0, max: MULTIFD_CHANNELS_MAX }),
    },
    { requiredKeys: [] },
  )
  .filter(migrationSettingsCel);

export const policyPriority = optional(fc.integer({ min: POLICY_PRIORITY_MIN, max: POLICY_PRIORITY_MAX }));

/** DNS-1123 labels (1-63 characters): VM, node and object names. */
export const dnsLabel: fc.Arbitrary<string> = fc
  .stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/)
  .filter((name) => name.length <= DNS1123_LABEL_MAX_LENGTH);
