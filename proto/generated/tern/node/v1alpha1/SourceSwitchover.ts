// Original file: proto/tern/node/v1alpha1/migration.proto

import type { Long } from '@grpc/proto-loader';

/**
 * The switchover's steps the source sees, on this node's wall clock in microseconds since the epoch (0: not known).
 */
export interface SourceSwitchover {
  /**
   * QEMU paused the guest for the switchover (QMP STOP at pre-switchover).
   */
  'pausedAtUnixUs'?: (number | string | Long);
  /**
   * The Quiescing step let QEMU continue (migrate-continue): the device state and the last pages cross from here.
   */
  'continuedAtUnixUs'?: (number | string | Long);
  /**
   * QEMU completed the migration (QMP MIGRATION `completed`). QEMU's source completes only once the target
   * acknowledged its load on the return path, so this comes after the target's loaded_at: the last byte left
   * before both.
   */
  'completedAtUnixUs'?: (number | string | Long);
  /**
   * The daemon published the outcome (the WatchMigration event the operator waits for).
   */
  'outcomeAtUnixUs'?: (number | string | Long);
  /**
   * The daemon saw QEMU's pre-switchover and began the Quiescing step (this node's clock).
   */
  'quiescingAtUnixUs'?: (number | string | Long);
  /**
   * The daemon sent migrate-continue at the end of the Quiescing step (this node's clock).
   */
  'continueSentAtUnixUs'?: (number | string | Long);
}

/**
 * The switchover's steps the source sees, on this node's wall clock in microseconds since the epoch (0: not known).
 */
export interface SourceSwitchover__Output {
  /**
   * QEMU paused the guest for the switchover (QMP STOP at pre-switchover).
   */
  'pausedAtUnixUs': (number);
  /**
   * The Quiescing step let QEMU continue (migrate-continue): the device state and the last pages cross from here.
   */
  'continuedAtUnixUs': (number);
  /**
   * QEMU completed the migration (QMP MIGRATION `completed`). QEMU's source completes only once the target
   * acknowledged its load on the return path, so this comes after the target's loaded_at: the last byte left
   * before both.
   */
  'completedAtUnixUs': (number);
  /**
   * The daemon published the outcome (the WatchMigration event the operator waits for).
   */
  'outcomeAtUnixUs': (number);
  /**
   * The daemon saw QEMU's pre-switchover and began the Quiescing step (this node's clock).
   */
  'quiescingAtUnixUs': (number);
  /**
   * The daemon sent migrate-continue at the end of the Quiescing step (this node's clock).
   */
  'continueSentAtUnixUs': (number);
}
