// The tuning knobs of a live migration. A MigrationPolicy sets them for the VMs it selects; a Migration may
// override any of them for itself. Unset fields fall through to the next level (policy, then built-in default).
import { Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { BYTE_QUANTITY_PATTERN, QUANTITY_MAX_LENGTH, quantityBoundsRule } from './quantities.js';
import { IntOrString, StringEnum, cel } from './schema.js';

/** `bandwidth` value meaning "no limit" (so does 0). */
export const UNLIMITED_BANDWIDTH = 'unlimited';
/** The largest bandwidth cap, bytes per second: what the daemon sends QEMU for "unlimited" (2^40). */
export const BANDWIDTH_MAX = '1Ti';

export const DOWNTIME_MS_MIN = 1;
export const DOWNTIME_TARGET_MS_MAX = 10_000;
export const MAX_DOWNTIME_MS_MAX = 60_000;
export const MULTIFD_CHANNELS_MAX = 16;
/** What the multifd channels may compress pages with (QEMU's multifd-compression; zlib is slower than zstd). */
export const MULTIFD_COMPRESSIONS = ['none', 'zstd'] as const;
export const TIMEOUT_SECONDS_MAX = 3600;
/** The smallest bandwidth cap other than "no cap", bytes per second. */
export const BANDWIDTH_MIN = '1Mi';

export const MigrationSettings = Type.Object(
  {
    bandwidth: Type.Optional(
      IntOrString(
        { pattern: `${BYTE_QUANTITY_PATTERN}|^${UNLIMITED_BANDWIDTH}$`, maxLength: QUANTITY_MAX_LENGTH },
        {
          description:
            'Bandwidth cap of the migration stream in bytes per second, e.g. "1Gi" or 125000000. ' +
            '0 or "unlimited" means no cap.',
          ...cel(
            {
              rule:
                "type(self) == string && self == 'unlimited' || !isQuantity(string(self)) || " +
                "quantity(string(self)).compareTo(quantity('0')) == 0 || quantity(string(self)).compareTo(quantity('1Mi')) >= 0",
              message: 'bandwidth must be 0 or "unlimited" (no cap) or at least 1Mi bytes per second',
            },
            {
              // The daemon refuses more (hypervisor-node/src/migration/engine/policy.ts), and far larger values do
              // not fit the operator's numbers; "unlimited" is the way to ask for no cap.
              rule: `!isQuantity(string(self)) || quantity(string(self)).compareTo(quantity('${BANDWIDTH_MAX}')) <= 0`,
              message: `bandwidth must be at most ${BANDWIDTH_MAX} bytes per second (use "unlimited" for no cap)`,
            },
          ),
        },
      ),
    ),
    downtimeTargetMs: Type.Optional(
      Type.Integer({
        description:
          'Initial downtime target (QEMU downtime-limit) in milliseconds; the convergence policy may raise it ' +
          'step by step up to maxDowntimeMs when rounds stop shrinking.',
        minimum: DOWNTIME_MS_MIN,
        maximum: DOWNTIME_TARGET_MS_MAX,
      }),
    ),
    maxDowntimeMs: Type.Optional(
      Type.Integer({
        description:
          'Largest downtime target, in milliseconds, the convergence policy may raise to. It also bounds the ' +
          "freeze: a switchover that has not finished 10 times this (at least 5 s) after the guest's pause is " +
          'abandoned and the guest runs on the source again.',
        minimum: DOWNTIME_MS_MIN,
        maximum: MAX_DOWNTIME_MS_MAX,
      }),
    ),
    completionTimeoutPerGiBSeconds: Type.Optional(
      Type.Integer({
        description: 'The migration is aborted after this many seconds per GiB of guest memory.',
        minimum: 1,
        maximum: TIMEOUT_SECONDS_MAX,
      }),
    ),
    stallTimeoutSeconds: Type.Optional(
      Type.Integer({
        description:
          'The migration is aborted when the remaining bytes have not shrunk for this many seconds.',
        minimum: 1,
        maximum: TIMEOUT_SECONDS_MAX,
      }),
    ),
    allowAutoConverge: Type.Optional(
      Type.Boolean({ description: 'Allow throttling the guest vCPUs when rounds do not converge.' }),
    ),
    allowPostCopy: Type.Optional(
      Type.Boolean({
        description:
          'Allow switching to post-copy when pre-copy cannot converge. The guest then runs on the target ' +
          'while the rest of its memory follows; losing the link in that phase loses the guest.',
      }),
    ),
    multifdChannels: Type.Optional(
      Type.Integer({
        description: 'Parallel data connections (QEMU multifd); 0 sends everything over the main channel.',
        minimum: 0,
        maximum: MULTIFD_CHANNELS_MAX,
      }),
    ),
    multifdCompression: Type.Optional(
      StringEnum(MULTIFD_COMPRESSIONS, {
        description:
          'Compression of the pages on the multifd channels: none, or zstd (level 1, one compressor per ' +
          'channel: fewer bytes on the link for more CPU on both nodes). Applies only with multifdChannels > 0.',
      }),
    ),
  },
  cel(
    {
      rule: '!has(self.downtimeTargetMs) || !has(self.maxDowntimeMs) || self.maxDowntimeMs >= self.downtimeTargetMs',
      message: 'maxDowntimeMs must be greater than or equal to downtimeTargetMs',
      fieldPath: '.maxDowntimeMs',
    },
    {
      // QEMU 10.0 cannot combine post-copy with multifd; the daemons refuse the pair.
      rule: '!has(self.allowPostCopy) || !self.allowPostCopy || !has(self.multifdChannels) || self.multifdChannels == 0',
      message: 'allowPostCopy cannot be combined with multifdChannels > 0',
      fieldPath: '.allowPostCopy',
    },
    {
      rule: "!has(self.multifdCompression) || self.multifdCompression == 'none' || !has(self.multifdChannels) || self.multifdChannels > 0",
      message: 'multifdCompression compresses the multifd channels: it needs multifdChannels > 0',
      fieldPath: '.multifdCompression',
    },
  ),
);
export type MigrationSettings = Static<typeof MigrationSettings>;

/**
 * Upper bounds a MigrationPolicy sets for the VMs it selects. A Migration whose `spec.overrides` go beyond a
 * ceiling is refused (failureReason PolicyViolation) rather than clamped, so that whoever asked knows it was not
 * granted; settings that come from policies or the operator's defaults are lowered to the ceiling. When several
 * matching policies set the same ceiling, the strictest one applies. An absent ceiling bounds nothing.
 */
export const MigrationCeilings = Type.Object(
  {
    maxBandwidth: Type.Optional(
      IntOrString(
        { pattern: BYTE_QUANTITY_PATTERN, maxLength: QUANTITY_MAX_LENGTH },
        {
          description:
            'Largest bandwidth cap, in bytes per second (e.g. "1Gi" or 125000000), from ' +
            `${BANDWIDTH_MIN} to ${BANDWIDTH_MAX}. It bounds settings.bandwidth: an override of 0 or ` +
            '"unlimited" (no cap) or above this is refused; a policy\'s or the default "unlimited" becomes this ' +
            'cap. "unlimited" and 0 are not ceilings: leave the field out for no ceiling.',
          ...cel({
            rule: quantityBoundsRule(BANDWIDTH_MIN, BANDWIDTH_MAX),
            message: `maxBandwidth must be from ${BANDWIDTH_MIN} to ${BANDWIDTH_MAX} bytes per second`,
          }),
        },
      ),
    ),
    maxMultifdChannels: Type.Optional(
      Type.Integer({
        description:
          'Most parallel data connections (settings.multifdChannels) a migration may open; 0 allows only the ' +
          'main channel.',
        minimum: 0,
        maximum: MULTIFD_CHANNELS_MAX,
      }),
    ),
    allowPostCopy: Type.Optional(
      Type.Boolean({
        description:
          "false forbids post-copy: an override of settings.allowPostCopy true is refused, and a policy's " +
          'true becomes false. true (or absent) bounds nothing.',
      }),
    ),
    maxDowntimeMs: Type.Optional(
      Type.Integer({
        description:
          'Largest downtime, in milliseconds, for both settings.downtimeTargetMs and settings.maxDowntimeMs ' +
          '(and so for the freeze deadline derived from them).',
        minimum: DOWNTIME_MS_MIN,
        maximum: MAX_DOWNTIME_MS_MAX,
      }),
    ),
    maxCompletionTimeoutPerGiBSeconds: Type.Optional(
      Type.Integer({
        description: 'Largest settings.completionTimeoutPerGiBSeconds (seconds per GiB of guest memory).',
        minimum: 1,
        maximum: TIMEOUT_SECONDS_MAX,
      }),
    ),
    maxStallTimeoutSeconds: Type.Optional(
      Type.Integer({
        description: 'Largest settings.stallTimeoutSeconds.',
        minimum: 1,
        maximum: TIMEOUT_SECONDS_MAX,
      }),
    ),
  },
  {
    description:
      'Upper bounds for the migrations of the VMs this policy selects. A Migration whose overrides exceed one is ' +
      'refused (failureReason PolicyViolation); settings from policies and defaults are lowered to it. When ' +
      'several matching policies set a ceiling, the strictest applies.',
  },
);
export type MigrationCeilings = Static<typeof MigrationCeilings>;
