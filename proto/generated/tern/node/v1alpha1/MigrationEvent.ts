// Original file: proto/tern/node/v1alpha1/migration.proto

import type { PhaseChange as _tern_node_v1alpha1_PhaseChange, PhaseChange__Output as _tern_node_v1alpha1_PhaseChange__Output } from '../../../tern/node/v1alpha1/PhaseChange.js';
import type { MigrationProgress as _tern_node_v1alpha1_MigrationProgress, MigrationProgress__Output as _tern_node_v1alpha1_MigrationProgress__Output } from '../../../tern/node/v1alpha1/MigrationProgress.js';
import type { ConvergenceDecision as _tern_node_v1alpha1_ConvergenceDecision, ConvergenceDecision__Output as _tern_node_v1alpha1_ConvergenceDecision__Output } from '../../../tern/node/v1alpha1/ConvergenceDecision.js';
import type { MigrationOutcome as _tern_node_v1alpha1_MigrationOutcome, MigrationOutcome__Output as _tern_node_v1alpha1_MigrationOutcome__Output } from '../../../tern/node/v1alpha1/MigrationOutcome.js';
import type { Long } from '@grpc/proto-loader';

export interface _tern_node_v1alpha1_MigrationEvent_TargetEvent {
  'state'?: (_tern_node_v1alpha1_MigrationEvent_TargetState);
  'qemuStatus'?: (string);
  'message'?: (string);
}

export interface _tern_node_v1alpha1_MigrationEvent_TargetEvent__Output {
  'state': (_tern_node_v1alpha1_MigrationEvent_TargetState__Output);
  'qemuStatus': (string);
  'message': (string);
}

// Original file: proto/tern/node/v1alpha1/migration.proto

export const _tern_node_v1alpha1_MigrationEvent_TargetState = {
  TARGET_STATE_UNSPECIFIED: 'TARGET_STATE_UNSPECIFIED',
  /**
   * QEMU's incoming status changed (see qemu_status).
   */
  TARGET_STATE_STATUS: 'TARGET_STATE_STATUS',
  /**
   * Terminal for the watch: the guest is loaded and paused, ready for ResumeTarget.
   */
  TARGET_STATE_LOADED: 'TARGET_STATE_LOADED',
  /**
   * Terminal for the watch: the incoming migration failed or was aborted.
   */
  TARGET_STATE_FAILED: 'TARGET_STATE_FAILED',
} as const;

export type _tern_node_v1alpha1_MigrationEvent_TargetState =
  | 'TARGET_STATE_UNSPECIFIED'
  | 0
  /**
   * QEMU's incoming status changed (see qemu_status).
   */
  | 'TARGET_STATE_STATUS'
  | 1
  /**
   * Terminal for the watch: the guest is loaded and paused, ready for ResumeTarget.
   */
  | 'TARGET_STATE_LOADED'
  | 2
  /**
   * Terminal for the watch: the incoming migration failed or was aborted.
   */
  | 'TARGET_STATE_FAILED'
  | 3

export type _tern_node_v1alpha1_MigrationEvent_TargetState__Output = typeof _tern_node_v1alpha1_MigrationEvent_TargetState[keyof typeof _tern_node_v1alpha1_MigrationEvent_TargetState]

export interface MigrationEvent {
  'migrationId'?: (string);
  'atUnixMs'?: (number | string | Long);
  'phase'?: (_tern_node_v1alpha1_PhaseChange | null);
  'progress'?: (_tern_node_v1alpha1_MigrationProgress | null);
  'decision'?: (_tern_node_v1alpha1_ConvergenceDecision | null);
  /**
   * Source: the last event of the stream.
   */
  'outcome'?: (_tern_node_v1alpha1_MigrationOutcome | null);
  'target'?: (_tern_node_v1alpha1_MigrationEvent_TargetEvent | null);
  'event'?: "phase"|"progress"|"decision"|"outcome"|"target";
}

export interface MigrationEvent__Output {
  'migrationId': (string);
  'atUnixMs': (number);
  'phase'?: (_tern_node_v1alpha1_PhaseChange__Output | null);
  'progress'?: (_tern_node_v1alpha1_MigrationProgress__Output | null);
  'decision'?: (_tern_node_v1alpha1_ConvergenceDecision__Output | null);
  /**
   * Source: the last event of the stream.
   */
  'outcome'?: (_tern_node_v1alpha1_MigrationOutcome__Output | null);
  'target'?: (_tern_node_v1alpha1_MigrationEvent_TargetEvent__Output | null);
  'event'?: "phase"|"progress"|"decision"|"outcome"|"target";
}
