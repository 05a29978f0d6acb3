// How one live migration is allowed to behave: link budget, downtime targets, which convergence measures it may
// take, and when it gives up. The operator resolves a MigrationPolicy per Migration; the daemon validates it here
// before anything reaches QEMU.

/** The daemon's resolved, validated settings of one migration (not the MigrationPolicy kind nor its wire message). */
export interface ResolvedMigrationPolicy {
  /** Link budget in bytes/s for pre-copy and post-copy; 0 = unlimited (QEMU's own default is 128 MiB/s). */
  bandwidthBytesPerSec: number;
  /** The downtime target QEMU starts with (its `downtime-limit`). */
  downtimeMs: number;
  /** The highest downtime target the convergence ramp may raise it to. */
  maxDowntimeMs: number;
  /** Number of steps of the ramp from downtimeMs to maxDowntimeMs. */
  downtimeSteps: number;
  /** May throttle the guest's vCPUs (QEMU auto-converge) when raising the downtime target was not enough. */
  allowAutoConverge: boolean;
  /** Ceilings (percent, increasing, each 1..99) the vCPU throttle is raised through, one per escalation. */
  cpuThrottleSteps: number[];
  /** May switch to post-copy when nothing else converges (a failure during post-copy loses the guest). */
  allowPostCopy: boolean;
  /** The migration fails when it has not completed within this many seconds per GiB of guest memory. */
  completionTimeoutPerGiBSeconds: number;
  /** The migration fails after this many seconds without progress (no new low of the dirty set, no action). */
  stallTimeoutSeconds: number;
  /** Rounds without shrinking (after the last convergence action) before the next action is taken. */
  stallRounds: number;
  /** Extra multifd connections; 0 = a single migration channel. */
  multifdChannels: number;
  /** Compression of the multifd channels' pages ('zstd' needs multifdChannels > 0). */
  multifdCompression: MultifdCompression;
}

/**
 * What QEMU compresses multifd pages with. QEMU 10.0 also offers zlib (slower than zstd at a worse ratio), and
 * qpl/uadk/qatzip (accelerator hardware); Tern offers none and zstd.
 */
export const MULTIFD_COMPRESSIONS = ['none', 'zstd'] as const;
export type MultifdCompression = (typeof MULTIFD_COMPRESSIONS)[number];

export const DEFAULT_MIGRATION_POLICY: Readonly<ResolvedMigrationPolicy> = Object.freeze({
  bandwidthBytesPerSec: 0,
  downtimeMs: 50,
  maxDowntimeMs: 1000,
  downtimeSteps: 5,
  allowAutoConverge: true,
  cpuThrottleSteps: [30, 60, 80, 95, 99],
  allowPostCopy: false,
  completionTimeoutPerGiBSeconds: 150,
  stallTimeoutSeconds: 150,
  stallRounds: 3,
  multifdChannels: 0,
  multifdCompression: 'none',
});

/** The shortest switchover deadline (switchoverTimeoutMs). */
export const MIN_SWITCHOVER_TIMEOUT_MS = 5_000;
/** The switchover deadline in multiples of the largest downtime target. */
const SWITCHOVER_TIMEOUT_DOWNTIMES = 10;

/**
 * How long the guest may stay paused for the switchover (from QEMU's pause before the switchover to the target
 * holding the complete guest) before the migration is abandoned and the guest runs on the source again: ten
 * times the largest downtime target, at least 5 s. The target never runs without the ownership record, so giving
 * up is always safe.
 */
export function switchoverTimeoutMs(policy: Pick<ResolvedMigrationPolicy, 'maxDowntimeMs'>): number {
  return Math.max(MIN_SWITCHOVER_TIMEOUT_MS, SWITCHOVER_TIMEOUT_DOWNTIMES * policy.maxDowntimeMs);
}

/** What "unlimited" becomes on the wire: 1 TiB/s, far above any link, so QEMU never rate-limits. */
export const UNLIMITED_BANDWIDTH_BYTES_PER_SEC = 2 ** 40;
/** QEMU rejects a downtime-limit above 2000 s. */
export const QEMU_MAX_DOWNTIME_MS = 2_000_000;
/** QEMU's multifd-channels range is 1..255. */
export const MAX_MULTIFD_CHANNELS = 255;

export interface PolicyProblem {
  field: keyof ResolvedMigrationPolicy | 'policy';
  message: string;
}

export class MigrationPolicyError extends Error {
  constructor(readonly problems: PolicyProblem[]) {
    super(`invalid migration policy: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
    this.name = 'MigrationPolicyError';
  }
}

/**
 * Fills unset fields from DEFAULT_MIGRATION_POLICY and validates the result. Throws MigrationPolicyError naming
 * every bad field; unknown fields are refused so a misspelt override does not silently fall back to a default.
 */
export function resolveMigrationPolicy(overrides: unknown = {}): ResolvedMigrationPolicy {
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
    throw new MigrationPolicyError([{ field: 'policy', message: 'must be an object' }]);
  }
  const unknown = Object.keys(overrides).filter((key) => !(key in DEFAULT_MIGRATION_POLICY));
  if (unknown.length > 0) {
    throw new MigrationPolicyError([{ field: 'policy', message: `unknown field(s) ${unknown.join(', ')}` }]);
  }
  const merged = { ...DEFAULT_MIGRATION_POLICY, ...(overrides as Partial<ResolvedMigrationPolicy>) };
  return validateMigrationPolicy(merged);
}

/** Returns a copy of a complete policy after checking every field and their relations. */
export function validateMigrationPolicy(policy: ResolvedMigrationPolicy): ResolvedMigrationPolicy {
  const problems: PolicyProblem[] = [];
  const fail = (field: PolicyProblem['field'], message: string): void => {
    problems.push({ field, message });
  };
  const integer = (field: keyof ResolvedMigrationPolicy, min: number, max: number, unit = ''): void => {
    const value = policy[field];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      fail(field, `must be an integer from ${min} to ${max}${unit}, got ${JSON.stringify(value)}`);
    }
  };
  const flag = (field: keyof ResolvedMigrationPolicy): void => {
    if (typeof policy[field] !== 'boolean')
      fail(field, `must be true or false, got ${JSON.stringify(policy[field])}`);
  };

  integer('bandwidthBytesPerSec', 0, UNLIMITED_BANDWIDTH_BYTES_PER_SEC, ' bytes/s (0 = unlimited)');
  integer('downtimeMs', 1, QEMU_MAX_DOWNTIME_MS, ' ms');
  integer('maxDowntimeMs', 1, QEMU_MAX_DOWNTIME_MS, ' ms');
  integer('downtimeSteps', 1, 100);
  flag('allowAutoConverge');
  flag('allowPostCopy');
  integer('completionTimeoutPerGiBSeconds', 1, 86_400, ' s');
  integer('stallTimeoutSeconds', 1, 86_400, ' s');
  integer('stallRounds', 1, 100);
  integer('multifdChannels', 0, MAX_MULTIFD_CHANNELS);
  if (!(MULTIFD_COMPRESSIONS as readonly unknown[]).includes(policy.multifdCompression)) {
    fail(
      'multifdCompression',
      `must be one of ${MULTIFD_COMPRESSIONS.join(', ')}, got ${JSON.stringify(policy.multifdCompression)}`,
    );
  }

  const steps = policy.cpuThrottleSteps;
  if (!Array.isArray(steps) || steps.length === 0 || steps.length > 20) {
    fail('cpuThrottleSteps', 'must be a list of 1 to 20 percentages');
  } else if (!steps.every((s) => Number.isSafeInteger(s) && s >= 1 && s <= 99)) {
    fail(
      'cpuThrottleSteps',
      `every step must be an integer percentage from 1 to 99, got ${JSON.stringify(steps)}`,
    );
  } else if (!steps.every((s, i) => i === 0 || s > steps[i - 1]!)) {
    fail('cpuThrottleSteps', `steps must increase, got ${JSON.stringify(steps)}`);
  }

  if (problems.length === 0 && policy.maxDowntimeMs < policy.downtimeMs) {
    fail(
      'maxDowntimeMs',
      `must be at least downtimeMs (${policy.downtimeMs} ms), got ${policy.maxDowntimeMs} ms`,
    );
  }
  if (problems.length === 0 && policy.allowPostCopy && policy.multifdChannels > 0) {
    // QEMU before 10.1 refuses (or, in 7.2, crashes on) multifd together with postcopy-ram.
    fail(
      'multifdChannels',
      'post-copy cannot be combined with multifd channels on QEMU 10.0; set one of them off',
    );
  }
  if (problems.length === 0 && policy.multifdCompression !== 'none' && policy.multifdChannels === 0) {
    fail('multifdCompression', 'compresses the multifd channels only: set multifdChannels above 0');
  }
  if (problems.length > 0) throw new MigrationPolicyError(problems);
  return { ...policy, cpuThrottleSteps: [...policy.cpuThrottleSteps] };
}

/** The downtime targets the convergence ramp walks through, first = downtimeMs, last = maxDowntimeMs. */
export function downtimeRamp(policy: ResolvedMigrationPolicy): number[] {
  if (policy.maxDowntimeMs === policy.downtimeMs) return [policy.downtimeMs];
  const span = policy.maxDowntimeMs - policy.downtimeMs;
  return Array.from({ length: policy.downtimeSteps + 1 }, (_, i) =>
    Math.round(policy.downtimeMs + (span * i) / policy.downtimeSteps),
  );
}

export function qemuMaxBandwidth(policy: ResolvedMigrationPolicy): number {
  return policy.bandwidthBytesPerSec === 0 ? UNLIMITED_BANDWIDTH_BYTES_PER_SEC : policy.bandwidthBytesPerSec;
}

/**
 * What must match on both ends of the migration stream: the target sets these before `migrate-incoming`
 * (postcopy-ram in particular must be on at both ends before the source calls `migrate`). The return path is
 * always on, so it is not a setting.
 */
export interface ChannelSettings {
  postCopy: boolean;
  multifdChannels: number;
  multifdCompression: MultifdCompression;
}

export function channelSettings(policy: ResolvedMigrationPolicy): ChannelSettings {
  return {
    postCopy: policy.allowPostCopy,
    multifdChannels: policy.multifdChannels,
    multifdCompression: policy.multifdCompression,
  };
}

/**
 * Checks channel settings that come on their own (a target's PrepareIncoming); throws saying what is wrong. The
 * same rules as validateMigrationPolicy's for these fields.
 */
export function validateChannelSettings(settings: ChannelSettings): ChannelSettings {
  const { multifdChannels, multifdCompression, postCopy } = settings;
  if (
    !Number.isSafeInteger(multifdChannels) ||
    multifdChannels < 0 ||
    multifdChannels > MAX_MULTIFD_CHANNELS
  ) {
    throw new Error(
      `multifd channels must be an integer from 0 to ${MAX_MULTIFD_CHANNELS}, got ${multifdChannels}`,
    );
  }
  if (!(MULTIFD_COMPRESSIONS as readonly unknown[]).includes(multifdCompression)) {
    throw new Error(
      `multifd compression must be one of ${MULTIFD_COMPRESSIONS.join(', ')}, got ${JSON.stringify(multifdCompression)}`,
    );
  }
  if (multifdCompression !== 'none' && multifdChannels === 0)
    throw new Error('multifd compression needs multifd channels');
  if (postCopy && multifdChannels > 0)
    throw new Error('post-copy cannot be combined with multifd channels on QEMU 10.0');
  return settings;
}

/**
 * The parameters both QEMUs set from ChannelSettings: the channel count and the compression must match at both
 * ends (QEMU does not negotiate them). Empty without multifd.
 */
export function channelParameters(settings: ChannelSettings): MultifdParameters {
  if (settings.multifdChannels === 0) return {};
  return {
    'multifd-channels': settings.multifdChannels,
    'multifd-compression': settings.multifdCompression,
  };
}

export interface MultifdParameters {
  'multifd-channels'?: number;
  'multifd-compression'?: MultifdCompression;
}

/**
 * Where the source looks for zero pages (only the source's setting matters): in the multifd sender threads, in
 * parallel, when there are channels; in the migration thread otherwise ('legacy'; QEMU's default 'multifd' means
 * the same without channels, spelt out here so that a QEMU whose earlier migration used channels is not left
 * with another setting).
 */
export function zeroPageDetection(settings: ChannelSettings): 'multifd' | 'legacy' {
  return settings.multifdChannels > 0 ? 'multifd' : 'legacy';
}

/** The capabilities both QEMUs set from ChannelSettings (the source adds its own on top). */
export function channelCapabilities(settings: ChannelSettings): Record<string, boolean> {
  return {
    events: true,
    'return-path': true,
    'postcopy-ram': settings.postCopy,
    multifd: settings.multifdChannels > 0,
  };
}
