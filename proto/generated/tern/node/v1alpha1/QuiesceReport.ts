// Original file: proto/tern/node/v1alpha1/migration.proto

import type { QuiescedDisk as _tern_node_v1alpha1_QuiescedDisk, QuiescedDisk__Output as _tern_node_v1alpha1_QuiescedDisk__Output } from '../../../tern/node/v1alpha1/QuiescedDisk.js';
import type { Long } from '@grpc/proto-loader';

/**
 * Quiescing (docs/disks.md): QEMU paused the guest and, in doing so, drained the in-flight requests and flushed
 * every disk; the source daemon completed the local disks' mirrors and checked with QEMU's per-device request
 * counters (query-blockstats) that no guest request reached a disk between the pause and the step's end.
 */
export interface QuiesceReport {
  /**
   * From the pause (the step's start) to the step's end (Freezing next, or the failure).
   */
  'durationMs'?: (number | string | Long);
  /**
   * Every disk of the guest, in the spec's order.
   */
  'disks'?: (_tern_node_v1alpha1_QuiescedDisk)[];
  /**
   * Why the step failed or did not finish; empty when it succeeded.
   */
  'error'?: (string);
}

/**
 * Quiescing (docs/disks.md): QEMU paused the guest and, in doing so, drained the in-flight requests and flushed
 * every disk; the source daemon completed the local disks' mirrors and checked with QEMU's per-device request
 * counters (query-blockstats) that no guest request reached a disk between the pause and the step's end.
 */
export interface QuiesceReport__Output {
  /**
   * From the pause (the step's start) to the step's end (Freezing next, or the failure).
   */
  'durationMs': (number);
  /**
   * Every disk of the guest, in the spec's order.
   */
  'disks': (_tern_node_v1alpha1_QuiescedDisk__Output)[];
  /**
   * Why the step failed or did not finish; empty when it succeeded.
   */
  'error': (string);
}
