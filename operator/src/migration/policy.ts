// Policy resolution for a Migration: each setting comes from spec.overrides if set there, else from the matching
// MigrationPolicy with the highest priority that sets it (equal priorities: the lexically smaller name wins), else
// from the operator's defaults. Pure: the caller supplies the VM's and its namespace's labels.
import type {
  LabelSelector,
  Migration,
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
  multifdChannels: 0,
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

export function resolveSettings(
  migration: Pick<Migration, 'spec'>,
  vm: Pick<VirtualMachine, 'metadata'>,
  policies: readonly MigrationPolicy[],
  namespaceLabels: Record<string, string> | undefined,
): { settings: ResolvedSettings; sources: SettingSources } {
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
  // A downtime target above the ceiling (from different levels) would be refused by the daemon: lift the ceiling.
  if (settings.maxDowntimeMs < settings.downtimeTargetMs) settings.maxDowntimeMs = settings.downtimeTargetMs;
  return { settings, sources };
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
  };
}
