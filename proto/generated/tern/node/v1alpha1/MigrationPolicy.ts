// Original file: proto/tern/node/v1alpha1/migration.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Overrides of the daemon's default migration policy; an unset field keeps the default.
 */
export interface MigrationPolicy {
  /**
   * Link budget, bytes/s; 0 = unlimited.
   */
  'bandwidthBytesPerSec'?: (number | string | Long);
  'downtimeMs'?: (number);
  'maxDowntimeMs'?: (number);
  'downtimeSteps'?: (number);
  'allowAutoConverge'?: (boolean);
  /**
   * Increasing vCPU throttle ceilings, percent; empty keeps the default.
   */
  'cpuThrottleSteps'?: (number)[];
  'allowPostCopy'?: (boolean);
  'completionTimeoutPerGibSeconds'?: (number);
  'stallTimeoutSeconds'?: (number);
  'stallRounds'?: (number);
  'multifdChannels'?: (number);
  /**
   * "none" or "zstd" (needs multifd_channels > 0); must match the target's ChannelSettings.
   */
  'multifdCompression'?: (string);
  '_bandwidthBytesPerSec'?: "bandwidthBytesPerSec";
  '_downtimeMs'?: "downtimeMs";
  '_maxDowntimeMs'?: "maxDowntimeMs";
  '_downtimeSteps'?: "downtimeSteps";
  '_allowAutoConverge'?: "allowAutoConverge";
  '_allowPostCopy'?: "allowPostCopy";
  '_completionTimeoutPerGibSeconds'?: "completionTimeoutPerGibSeconds";
  '_stallTimeoutSeconds'?: "stallTimeoutSeconds";
  '_stallRounds'?: "stallRounds";
  '_multifdChannels'?: "multifdChannels";
  '_multifdCompression'?: "multifdCompression";
}

/**
 * Overrides of the daemon's default migration policy; an unset field keeps the default.
 */
export interface MigrationPolicy__Output {
  /**
   * Link budget, bytes/s; 0 = unlimited.
   */
  'bandwidthBytesPerSec'?: (number);
  'downtimeMs'?: (number);
  'maxDowntimeMs'?: (number);
  'downtimeSteps'?: (number);
  'allowAutoConverge'?: (boolean);
  /**
   * Increasing vCPU throttle ceilings, percent; empty keeps the default.
   */
  'cpuThrottleSteps': (number)[];
  'allowPostCopy'?: (boolean);
  'completionTimeoutPerGibSeconds'?: (number);
  'stallTimeoutSeconds'?: (number);
  'stallRounds'?: (number);
  'multifdChannels'?: (number);
  /**
   * "none" or "zstd" (needs multifd_channels > 0); must match the target's ChannelSettings.
   */
  'multifdCompression'?: (string);
  '_bandwidthBytesPerSec'?: "bandwidthBytesPerSec";
  '_downtimeMs'?: "downtimeMs";
  '_maxDowntimeMs'?: "maxDowntimeMs";
  '_downtimeSteps'?: "downtimeSteps";
  '_allowAutoConverge'?: "allowAutoConverge";
  '_allowPostCopy'?: "allowPostCopy";
  '_completionTimeoutPerGibSeconds'?: "completionTimeoutPerGibSeconds";
  '_stallTimeoutSeconds'?: "stallTimeoutSeconds";
  '_stallRounds'?: "stallRounds";
  '_multifdChannels'?: "multifdChannels";
  '_multifdCompression'?: "multifdCompression";
}
