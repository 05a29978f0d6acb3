// Original file: proto/tern/node/v1alpha1/migration.proto

import type { PhaseTiming as _tern_node_v1alpha1_PhaseTiming, PhaseTiming__Output as _tern_node_v1alpha1_PhaseTiming__Output } from '../../../tern/node/v1alpha1/PhaseTiming.js';
import type { ConvergenceDecision as _tern_node_v1alpha1_ConvergenceDecision, ConvergenceDecision__Output as _tern_node_v1alpha1_ConvergenceDecision__Output } from '../../../tern/node/v1alpha1/ConvergenceDecision.js';
import type { QuiesceReport as _tern_node_v1alpha1_QuiesceReport, QuiesceReport__Output as _tern_node_v1alpha1_QuiesceReport__Output } from '../../../tern/node/v1alpha1/QuiesceReport.js';
import type { SourceSwitchover as _tern_node_v1alpha1_SourceSwitchover, SourceSwitchover__Output as _tern_node_v1alpha1_SourceSwitchover__Output } from '../../../tern/node/v1alpha1/SourceSwitchover.js';
import type { Long } from '@grpc/proto-loader';

// Original file: proto/tern/node/v1alpha1/migration.proto

/**
 * Why a migration did not complete, for callers that act on it; `reason` is the sentence for people.
 */
export const _tern_node_v1alpha1_MigrationOutcome_Cause = {
  CAUSE_UNSPECIFIED: 'CAUSE_UNSPECIFIED',
  /**
   * CancelMigration.
   */
  CAUSE_CANCELLED: 'CAUSE_CANCELLED',
  /**
   * The completion timeout (per GiB of memory) passed.
   */
  CAUSE_TIMEOUT: 'CAUSE_TIMEOUT',
  /**
   * No new low of the dirty set within the stall timeout.
   */
  CAUSE_STALLED: 'CAUSE_STALLED',
  /**
   * QEMU's stream to the target failed: refused, TLS handshake, broken, or the target QEMU went away.
   */
  CAUSE_CONNECTION: 'CAUSE_CONNECTION',
  /**
   * The source QEMU, or a step of the source daemon (quiesce, continue), failed.
   */
  CAUSE_SOURCE: 'CAUSE_SOURCE',
} as const;

/**
 * Why a migration did not complete, for callers that act on it; `reason` is the sentence for people.
 */
export type _tern_node_v1alpha1_MigrationOutcome_Cause =
  | 'CAUSE_UNSPECIFIED'
  | 0
  /**
   * CancelMigration.
   */
  | 'CAUSE_CANCELLED'
  | 1
  /**
   * The completion timeout (per GiB of memory) passed.
   */
  | 'CAUSE_TIMEOUT'
  | 2
  /**
   * No new low of the dirty set within the stall timeout.
   */
  | 'CAUSE_STALLED'
  | 3
  /**
   * QEMU's stream to the target failed: refused, TLS handshake, broken, or the target QEMU went away.
   */
  | 'CAUSE_CONNECTION'
  | 4
  /**
   * The source QEMU, or a step of the source daemon (quiesce, continue), failed.
   */
  | 'CAUSE_SOURCE'
  | 5

/**
 * Why a migration did not complete, for callers that act on it; `reason` is the sentence for people.
 */
export type _tern_node_v1alpha1_MigrationOutcome_Cause__Output = typeof _tern_node_v1alpha1_MigrationOutcome_Cause[keyof typeof _tern_node_v1alpha1_MigrationOutcome_Cause]

// Original file: proto/tern/node/v1alpha1/migration.proto

export const _tern_node_v1alpha1_MigrationOutcome_Result = {
  RESULT_UNSPECIFIED: 'RESULT_UNSPECIFIED',
  /**
   * The target holds the guest loaded and paused; the hand-over is next.
   */
  RESULT_COMPLETED: 'RESULT_COMPLETED',
  RESULT_FAILED: 'RESULT_FAILED',
  RESULT_ABORTED: 'RESULT_ABORTED',
} as const;

export type _tern_node_v1alpha1_MigrationOutcome_Result =
  | 'RESULT_UNSPECIFIED'
  | 0
  /**
   * The target holds the guest loaded and paused; the hand-over is next.
   */
  | 'RESULT_COMPLETED'
  | 1
  | 'RESULT_FAILED'
  | 2
  | 'RESULT_ABORTED'
  | 3

export type _tern_node_v1alpha1_MigrationOutcome_Result__Output = typeof _tern_node_v1alpha1_MigrationOutcome_Result[keyof typeof _tern_node_v1alpha1_MigrationOutcome_Result]

export interface MigrationOutcome {
  'result'?: (_tern_node_v1alpha1_MigrationOutcome_Result);
  'reason'?: (string);
  /**
   * Wall time from StartMigration to the outcome.
   */
  'durationMs'?: (number | string | Long);
  /**
   * QEMU's own figures (downtime only when completed).
   */
  'qemuTotalTimeMs'?: (number | string | Long);
  'downtimeMs'?: (number | string | Long);
  'setupTimeMs'?: (number | string | Long);
  'transferredBytes'?: (number | string | Long);
  'rounds'?: (number);
  'postCopy'?: (boolean);
  'phases'?: (_tern_node_v1alpha1_PhaseTiming)[];
  'decisions'?: (_tern_node_v1alpha1_ConvergenceDecision)[];
  /**
   * The source QEMU's run state at the outcome, e.g. 'running', 'postmigrate'; empty when unknown.
   */
  'sourceRunState'?: (string);
  /**
   * Set unless COMPLETED.
   */
  'cause'?: (_tern_node_v1alpha1_MigrationOutcome_Cause);
  /**
   * The Quiescing step, once QEMU paused the guest before the switchover (unset if it never did): how long it took
   * and what it found on each disk. A failed step also sets result FAILED with the same reason.
   */
  'quiesce'?: (_tern_node_v1alpha1_QuiesceReport | null);
  /**
   * The switchover's steps on the source (set once QEMU paused the guest for it).
   */
  'switchover'?: (_tern_node_v1alpha1_SourceSwitchover | null);
}

export interface MigrationOutcome__Output {
  'result': (_tern_node_v1alpha1_MigrationOutcome_Result__Output);
  'reason': (string);
  /**
   * Wall time from StartMigration to the outcome.
   */
  'durationMs': (number);
  /**
   * QEMU's own figures (downtime only when completed).
   */
  'qemuTotalTimeMs': (number);
  'downtimeMs': (number);
  'setupTimeMs': (number);
  'transferredBytes': (number);
  'rounds': (number);
  'postCopy': (boolean);
  'phases': (_tern_node_v1alpha1_PhaseTiming__Output)[];
  'decisions': (_tern_node_v1alpha1_ConvergenceDecision__Output)[];
  /**
   * The source QEMU's run state at the outcome, e.g. 'running', 'postmigrate'; empty when unknown.
   */
  'sourceRunState': (string);
  /**
   * Set unless COMPLETED.
   */
  'cause': (_tern_node_v1alpha1_MigrationOutcome_Cause__Output);
  /**
   * The Quiescing step, once QEMU paused the guest before the switchover (unset if it never did): how long it took
   * and what it found on each disk. A failed step also sets result FAILED with the same reason.
   */
  'quiesce': (_tern_node_v1alpha1_QuiesceReport__Output | null);
  /**
   * The switchover's steps on the source (set once QEMU paused the guest for it).
   */
  'switchover': (_tern_node_v1alpha1_SourceSwitchover__Output | null);
}
