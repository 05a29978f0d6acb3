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
  TIMEOUT_SECONDS_MAX,
  UNLIMITED_BANDWIDTH,
  type MigrationCeilings,
  type MigrationSettings,
  BYTE_QUANTITY_MULTIPLIERS,
} from '../../crds/index.js';

const SUFFIXES = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei', 'k', 'M', 'G', 'T', 'P', 'E'] as const;
const QUANTITY = new RegExp(BYTE_QUANTITY_PATTERN);

/** A quantity's exact value as a fraction (numerator, denominator), as CEL's quantity() compares it. */
export function exactQuantity(value: string | number): { num: bigint; den: bigint } {
  if (typeof value === 'number') return { num: BigInt(value), den: 1n };
  const match = QUANTITY.exec(value);
  if (!match) throw new Error(`not a byte quantity: ${value}`);
  const suffix = match[2] ?? '';
  const [whole = '0', fraction = ''] = value.slice(0, value.length - suffix.length).split('.');
  return {
    num: BigInt(whole + fraction) * BYTE_QUANTITY_MULTIPLIERS[suffix]!,
    den: 10n ** BigInt(fraction.length),
  };
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

/** MigrationCeilings.maxBandwidth's CEL rule: from 1Mi to BANDWIDTH_MAX ("unlimited" and 0 are not ceilings). */
export function maxBandwidthCel(value: string | number): boolean {
  return compareQuantity(value, '1Mi') >= 0 && compareQuantity(value, BANDWIDTH_MAX) <= 0;
}

/** MigrationCeilings the CRD accepts (MigrationPolicy.spec.ceilings). */
export const migrationCeilings: fc.Arbitrary<MigrationCeilings> = fc
  .record(
    {
      maxBandwidth: fc.oneof(
        int64(0),
        byteQuantityString(['1Mi', '100Mi', '1Gi', '1Ti', '1048575', '1048577', '1.5Mi']),
      ),
      maxMultifdChannels: fc.integer({ min: 0, max: MULTIFD_CHANNELS_MAX }),
      allowPostCopy: fc.boolean(),
      maxDowntimeMs: fc.integer({ min: DOWNTIME_MS_MIN, max: MAX_DOWNTIME_MS_MAX }),
      maxCompletionTimeoutPerGiBSeconds: fc.integer({ min: 1, max: TIMEOUT_SECONDS_MAX }),
      maxStallTimeoutSeconds: fc.integer({ min: 1, max: TIMEOUT_SECONDS_MAX }),
    },
    { requiredKeys: [] },
  )
  .filter((c) => c.maxBandwidth === undefined || maxBandwidthCel(c.maxBandwidth));

/** The fields of a policy's `settings` that its own `ceilings` refuse (MigrationPolicySpec's CEL rules). */
export function settingsAboveOwnCeilings(
  settings: MigrationSettings,
  ceilings: MigrationCeilings | undefined,
): (keyof MigrationSettings)[] {
  if (!ceilings) return [];
  const above: (keyof MigrationSettings)[] = [];
  const over = (value: number | undefined, max: number | undefined) =>
    value !== undefined && max !== undefined && value > max;
  const { bandwidth } = settings;
  if (
    bandwidth !== undefined &&
    ceilings.maxBandwidth !== undefined &&
    (bandwidth === UNLIMITED_BANDWIDTH ||
      compareQuantity(bandwidth, 0) === 0 ||
      compareQuantity(bandwidth, ceilings.maxBandwidth) > 0)
  ) {
    above.push('bandwidth');
  }
  if (over(settings.multifdChannels, ceilings.maxMultifdChannels)) above.push('multifdChannels');
  if (settings.allowPostCopy === true && ceilings.allowPostCopy === false) above.push('allowPostCopy');
  if (over(settings.downtimeTargetMs, ceilings.maxDowntimeMs)) above.push('downtimeTargetMs');
  if (over(settings.maxDowntimeMs, ceilings.maxDowntimeMs)) above.push('maxDowntimeMs');
  if (over(settings.completionTimeoutPerGiBSeconds, ceilings.maxCompletionTimeoutPerGiBSeconds)) {
    above.push('completionTimeoutPerGiBSeconds');
  }
  if (over(settings.stallTimeoutSeconds, ceilings.maxStallTimeoutSeconds)) above.push('stallTimeoutSeconds');
  return above;
}

/**
 * A MigrationPolicy's settings and ceilings the CRD accepts together: the settings its own ceilings refuse are
 * left out (dropping a field keeps MigrationSettings' own CEL rules true).
 */
export const policySettingsAndCeilings: fc.Arbitrary<{
  settings: MigrationSettings;
  ceilings: MigrationCeilings | undefined;
}> = fc
  .record({ settings: migrationSettings, ceilings: optional(migrationCeilings) })
  .map(({ settings, ceilings }) => {
    const kept = { ...settings };
    for (const field of settingsAboveOwnCeilings(settings, ceilings)) delete kept[field];
    return { settings: kept, ceilings };
  });

export const policyPriority = optional(fc.integer({ min: POLICY_PRIORITY_MIN, max: POLICY_PRIORITY_MAX }));

/** DNS-1123 labels (1-63 characters): VM, node and object names. */
export const dnsLabel: fc.Arbitrary<string> = fc
  .stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/)
  .filter((name) => name.length <= DNS1123_LABEL_MAX_LENGTH);
