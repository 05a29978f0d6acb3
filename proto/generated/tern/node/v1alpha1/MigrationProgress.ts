// Original file: proto/tern/node/v1alpha1/migration.proto

import type { Long } from '@grpc/proto-loader';

export interface MigrationProgress {
  /**
   * QEMU's status, e.g. 'active', 'pre-switchover', 'device'.
   */
  'status'?: (string);
  /**
   * Pass over guest memory (1 = the first full copy).
   */
  'round'?: (number);
  'transferredBytes'?: (number | string | Long);
  'remainingBytes'?: (number | string | Long);
  'totalBytes'?: (number | string | Long);
  'dirtyRateBytesPerSec'?: (number | string | Long);
  'throughputMbps'?: (number | string);
  'expectedDowntimeMs'?: (number | string | Long);
  'cpuThrottlePercent'?: (number);
  'qemuTotalTimeMs'?: (number | string | Long);
  /**
   * Local disks (mirrored before the memory): bytes copied so far and the bytes to copy, over all disks; both 0
   * for a guest without local disks. The copy goes on (each guest write is mirrored, and counted in both) until the
   * switchover; the samples after the mirrors completed there carry the final figures, copied equal to total.
   */
  'diskTransferredBytes'?: (number | string | Long);
  'diskTotalBytes'?: (number | string | Long);
}

export interface MigrationProgress__Output {
  /**
   * QEMU's status, e.g. 'active', 'pre-switchover', 'device'.
   */
  'status': (string);
  /**
   * Pass over guest memory (1 = the first full copy).
   */
  'round': (number);
  'transferredBytes': (number);
  'remainingBytes': (number);
  'totalBytes': (number);
  'dirtyRateBytesPerSec': (number);
  'throughputMbps': (number);
  'expectedDowntimeMs': (number);
  'cpuThrottlePercent': (number);
  'qemuTotalTimeMs': (number);
  /**
   * Local disks (mirrored before the memory): bytes copied so far and the bytes to copy, over all disks; both 0
   * for a guest without local disks. The copy goes on (each guest write is mirrored, and counted in both) until the
   * switchover; the samples after the mirrors completed there carry the final figures, copied equal to total.
   */
  'diskTransferredBytes': (number);
  'diskTotalBytes': (number);
}
