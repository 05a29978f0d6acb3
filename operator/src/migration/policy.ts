// Policy resolution for a Migration: each setting comes from spec.overrides if set there, else from the matching
// MigrationPolicy with the highest priority that sets it (equal priorities: the lexically smaller name wins), else
// from the operator's defaults. Then the ceilings of the matching policies (the strictest of each) apply: an
// override above a ceiling is a violation (the Migration is refused, PolicyViolation), a setting from a policy or
// a default is lowered to the ceiling. Pure: the caller supplies the VM's and its namespace's labels.
import type {
  LabelSelector,
  Migration,
  MigrationCeilings,
  MigrationPolicy,
  MigrationSettings,
  VirtualMachine,
} from '../../../crds/index.js';
import { UNLIMITED_BANDWIDTH, parseByteQuantity } from '../../../crds/index.js';
import type { WireMigrationPolicy } from '../../../proto/index.js';

export type SettingName = keyof MigrationSettings;
export type ResolvedSettings = Required<MigrationSettings>;

/** Where each resolved setting came from: 'override', 'policy/<name>' or 'default'. */
export type SettingSources = Record<SettingName, string>;

/** The operator's built-in defaults (the daemon's engine defaults, spelled out so status can show them). */
export const DEFAULT_MIGRATION_SETTINGS: ResolvedSettings = {
  bandwidth: UNLIMITED_BANDWIDTH,
  downtimeTargetMs: 50,
  maxDowntimeMs: 1_000,
  completionTimeoutPerGiBSeconds: 150,
  stallTimeoutSeconds: 150,
  allowAutoConverge: true,
  allowPostCopy: false,
  // Two channels beat one in every paired bench:migration run (docs/tuning.md "A faster stream").
  multifdChannels: 2,
  multifdCompression: 'none',
};

const SETTING_NAMES = Object.keys(DEFAULT_MIGRATION_SETTINGS) as SettingName[];

export function matchesLabelSelector(
  selector: LabelSelector | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!selector) return true;
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (have[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(have, key);
    const ok =
      operator === 'In'
        ? present && values.includes(have[key]!)
        : operator === 'NotIn'
          ? !present || !values.includes(have[key]!)
          : operator === 'Exists'
            ? present
            : !present;
    if (!ok) return false;
  }
  return true;
}

/** The policies that select the VM, strongest first (priority descending, then name ascending). */
export function matchingPolicies(
  policies: readonly MigrationPolicy[],
  vmLabels: Record<string, string> | undefined,
  namespaceLabels: Record<string, string> | undefined,
): MigrationPolicy[] {
  return policies
    .filter(
      (policy) =>
        matchesLabelSelector(policy.spec.vmSelector, vmLabels) &&
        matchesLabelSelector(policy.spec.namespaceSelector, namespaceLabels),
    )
    .sort((a, b) => {
      const byPriority = (b.spec.priority ?? 0) - (a.spec.priority ?? 0);
      if (byPriority !== 0) return byPriority;
      const [x, y] = [a.metadata.name ?? '', b.metadata.name ?? ''];
      return x < y ? -1 : x > y ? 1 : 0;
    });
}

export type CeilingName = keyof MigrationCeilings;

/** The strictest value of one ceiling among the matching policies, and the policy that sets it. */
export interface Ceiling<K extends CeilingName = CeilingName> {
  value: NonNullable<MigrationCeilings[K]>;
  policy: string;
}
export type EffectiveCeilings = { [K in CeilingName]?: Ceiling<K> };

/** An override above a ceiling: the Migration is refused, not clamped. */
export interface PolicyViolation {
  field: SettingName;
  value: MigrationSettings[SettingName];
  ceiling: CeilingName;
  limit: MigrationCeilings[CeilingName];
  policy: string;
  message: string;
}

export interface Resolution {
  /** Always within the ceilings (when there are violations, the overrides concerned are lowered too). */
  settings: ResolvedSettings;
  sources: SettingSources;
  ceilings: EffectiveCeilings;
  /** Overrides above a ceiling; not empty: the Migration is refused (PolicyViolation). */
  violations: PolicyViolation[];
}

/** Bandwidth as a number to compare: bytes per second, no cap (0, "unlimited") as Infinity. */
function bandwidthBound(bandwidth: string | number): number {
  let bytes: number;
  try {
    bytes = bandwidthBytesPerSecond(bandwidth);
  } catch {
    return Infinity; // not a quantity the CRD accepts: above any ceiling
  }
  return bytes === 0 ? Infinity : bytes;
}

/** How each ceiling compares (smaller is stricter) and which settings it bounds. */
const CEILINGS: {
  [K in CeilingName]: {
    bound: (value: NonNullable<MigrationCeilings[K]>) => number;
    settings: SettingName[];
  };
} = {
  maxBandwidth: { bound: bandwidthBound, settings: ['bandwidth'] },
  maxMultifdChannels: { bound: (n) => n, settings: ['multifdChannels'] },
  // false (0) forbids post-copy; true (1) bounds nothing.
  allowPostCopy: { bound: (allowed) => (allowed ? 1 : 0), settings: ['allowPostCopy'] },
  maxDowntimeMs: { bound: (n) => n, settings: ['downtimeTargetMs', 'maxDowntimeMs'] },
  maxCompletionTimeoutPerGiBSeconds: { bound: (n) => n, settings: ['completionTimeoutPerGiBSeconds'] },
  maxStallTimeoutSeconds: { bound: (n) => n, settings: ['stallTimeoutSeconds'] },
};
const CEILING_NAMES = Object.keys(CEILINGS) as CeilingName[];

/** A setting's value on the scale of its ceiling. */
function settingBound(name: SettingName, value: ResolvedSettings[SettingName]): number {
  if (name === 'bandwidth') return bandwidthBound(value as ResolvedSettings['bandwidth']);
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value as number;
}

/**
 * The strictest value of each ceiling among `ranked` (policies strongest first): the smallest; on a tie the
 * stronger policy is named.
 */
export function effectiveCeilings(ranked: readonly MigrationPolicy[]): EffectiveCeilings {
  const result: EffectiveCeilings = {};
  for (const name of CEILING_NAMES) {
    const bound = CEILINGS[name].bound as (value: unknown) => number;
    let best: Ceiling | undefined;
    for (const policy of ranked) {
      const value = policy.spec.ceilings?.[name];
      if (value === undefined) continue;
      if (best === undefined || bound(value) < bound(best.value)) {
        best = { value, policy: policy.metadata.name ?? '' };
      }
    }
    if (best) (result as Record<CeilingName, Ceiling>)[name] = best;
  }
  return result;
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function violationMessage(field: SettingName, value: unknown, ceiling: CeilingName, c: Ceiling): string {
  const what = `spec.overrides.${field} ${show(value)}`;
  const where = `MigrationPolicy ${c.policy}`;
  if (ceiling === 'allowPostCopy')
    return `${what} is not allowed: ${where} sets ceilings.allowPostCopy false`;
  const noCap =
    field === 'bandwidth' && bandwidthBound(value as string | number) === Infinity ? ' (no cap)' : '';
  return `${what}${noCap} exceeds ceilings.${ceiling} ${show(c.value)} of ${where}`;
}

/** The message of a refusal for `violations` (not empty). */
export function policyViolationMessage(violations: readonly PolicyViolation[]): string {
  return `refused by MigrationPolicy ceilings: ${violations.map((v) => v.message).join('; ')}`;
}

/**
 * The settings of a Migration: each from its overrides, else the strongest matching policy that sets it, else the
 * default; then bounded by the strictest ceiling of the matching policies. Overrides above a ceiling are returned
 * as violations (the caller refuses the Migration); other settings above one are lowered to it.
 */
export function resolveSettings(
  migration: Pick<Migration, 'spec'>,
  vm: Pick<VirtualMachine, 'metadata'>,
  policies: readonly MigrationPolicy[],
  namespaceLabels: Record<string, string> | undefined,
): Resolution {
  const ranked = matchingPolicies(policies, vm.metadata.labels, namespaceLabels);
  const settings = { ...DEFAULT_MIGRATION_SETTINGS };
  const sources = Object.fromEntries(SETTING_NAMES.map((name) => [name, 'default'])) as SettingSources;
  const assign = <K extends SettingName>(name: K, value: MigrationSettings[K], source: string): boolean => {
    if (value === undefined) return false;
    settings[name] = value as ResolvedSettings[K];
    sources[name] = source;
    return true;
  };
  for (const name of SETTING_NAMES) {
    if (assign(name, migration.spec.overrides?.[name], 'override')) continue;
    for (const policy of ranked) {
      if (assign(name, policy.spec.settings[name], `policy/${policy.metadata.name}`)) break;
    }
  }
  const ceilings = effectiveCeilings(ranked);
  const violations: PolicyViolation[] = [];
  for (const ceiling of CEILING_NAMES) {
    const c = ceilings[ceiling] as Ceiling | undefined;
    if (!c) continue;
    const limit = (CEILINGS[ceiling].bound as (value: unknown) => number)(c.value);
    for (const name of CEILINGS[ceiling].settings) {
      const value = settings[name];
      if (settingBound(name, value) <= limit) continue;
      if (sources[name] === 'override') {
        violations.push({
          field: name,
          value,
          ceiling,
          limit: c.value,
          policy: c.policy,
          message: violationMessage(name, value, ceiling, c),
        });
      } else {
        sources[name] = `ceiling/${c.policy}`;
      }
      // Lowered in every case: the settings returned never exceed a ceiling.
      (settings as Record<SettingName, unknown>)[name] = c.value;
    }
  }
  // QEMU 10.0 cannot combine post-copy with multifd channels: channels nobody asked for (the default) give way.
  if (settings.allowPostCopy && settings.multifdChannels > 0 && sources.multifdChannels === 'default') {
    settings.multifdChannels = 0;
    sources.multifdChannels = 'default (post-copy allowed)';
  }
  // A downtime target above maxDowntimeMs (from different levels) would be refused by the daemon: lift
  // maxDowntimeMs. Both are within ceilings.maxDowntimeMs here, so the lifted value is too.
  if (settings.maxDowntimeMs < settings.downtimeTargetMs) settings.maxDowntimeMs = settings.downtimeTargetMs;
  return { settings, sources, ceilings, violations };
}

/** Bytes per second; 0 = no cap. */
export function bandwidthBytesPerSecond(bandwidth: ResolvedSettings['bandwidth']): number {
  return bandwidth === UNLIMITED_BANDWIDTH ? 0 : parseByteQuantity(bandwidth);
}

/** The daemon's policy message for the resolved settings. */
export function toWirePolicy(settings: ResolvedSettings): WireMigrationPolicy {
  return {
    bandwidthBytesPerSec: bandwidthBytesPerSecond(settings.bandwidth),
    downtimeMs: settings.downtimeTargetMs,
    maxDowntimeMs: settings.maxDowntimeMs,
    allowAutoConverge: settings.allowAutoConverge,
    allowPostCopy: settings.allowPostCopy,
    completionTimeoutPerGibSeconds: settings.completionTimeoutPerGiBSeconds,
    stallTimeoutSeconds: settings.stallTimeoutSeconds,
    multifdChannels: settings.multifdChannels,
    // Compression applies to the multifd channels only: with none (from another level, or a ceiling) it is off.
    multifdCompression: settings.multifdChannels > 0 ? settings.multifdCompression : 'none',
  };
}
