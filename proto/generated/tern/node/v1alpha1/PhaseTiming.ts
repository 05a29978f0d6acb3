// Original file: proto/tern/node/v1alpha1/migration.proto

import type { MigrationPhase as _tern_node_v1alpha1_MigrationPhase, MigrationPhase__Output as _tern_node_v1alpha1_MigrationPhase__Output } from '../../../tern/node/v1alpha1/MigrationPhase.js';
import type { Long } from '@grpc/proto-loader';

export interface PhaseTiming {
  'phase'?: (_tern_node_v1alpha1_MigrationPhase);
  'startedAtUnixMs'?: (number | string | Long);
  /**
   * 0 for the current or a terminal phase.
   */
  'durationMs'?: (number | string | Long);
}

export interface PhaseTiming__Output {
  'phase': (_tern_node_v1alpha1_MigrationPhase__Output);
  'startedAtUnixMs': (number);
  /**
   * 0 for the current or a terminal phase.
   */
  'durationMs': (number);
}
