// Original file: proto/tern/node/v1alpha1/migration.proto

import type { DiskStorage as _tern_node_v1alpha1_DiskStorage, DiskStorage__Output as _tern_node_v1alpha1_DiskStorage__Output } from '../../../tern/node/v1alpha1/DiskStorage.js';
import type { Long } from '@grpc/proto-loader';

export interface QuiescedDisk {
  'name'?: (string);
  'storage'?: (_tern_node_v1alpha1_DiskStorage);
  /**
   * The guest's writes and flushes QEMU had completed on this disk when the step began.
   */
  'writes'?: (number | string | Long);
  'flushes'?: (number | string | Long);
  /**
   * Completed between the pause and the step's end: 0 on a quiesced disk.
   */
  'writesAfterPause'?: (number | string | Long);
  'flushesAfterPause'?: (number | string | Long);
  /**
   * Reads, discards, failed and invalid requests of any kind between the pause and the step's end: 0.
   */
  'otherAfterPause'?: (number | string | Long);
  /**
   * Local disk: its mirror concluded, the target's copy is final. Always false for a shared disk, which the
   * target opens only once the source inactivated it (QEMU's switchover, after this step).
   */
  'mirrorCompleted'?: (boolean);
  /**
   * Flushed by QEMU's pause, and nothing reached the disk since (the counters did not move).
   */
  'flushed'?: (boolean);
}

export interface QuiescedDisk__Output {
  'name': (string);
  'storage': (_tern_node_v1alpha1_DiskStorage__Output);
  /**
   * The guest's writes and flushes QEMU had completed on this disk when the step began.
   */
  'writes': (number);
  'flushes': (number);
  /**
   * Completed between the pause and the step's end: 0 on a quiesced disk.
   */
  'writesAfterPause': (number);
  'flushesAfterPause': (number);
  /**
   * Reads, discards, failed and invalid requests of any kind between the pause and the step's end: 0.
   */
  'otherAfterPause': (number);
  /**
   * Local disk: its mirror concluded, the target's copy is final. Always false for a shared disk, which the
   * target opens only once the source inactivated it (QEMU's switchover, after this step).
   */
  'mirrorCompleted': (boolean);
  /**
   * Flushed by QEMU's pause, and nothing reached the disk since (the counters did not move).
   */
  'flushed': (boolean);
}
