// Original file: proto/tern/node/v1alpha1/migration.proto

import type { MigrationPhase as _tern_node_v1alpha1_MigrationPhase, MigrationPhase__Output as _tern_node_v1alpha1_MigrationPhase__Output } from '../../../tern/node/v1alpha1/MigrationPhase.js';

export interface PhaseChange {
  'from'?: (_tern_node_v1alpha1_MigrationPhase);
  'to'?: (_tern_node_v1alpha1_MigrationPhase);
  'reason'?: (string);
}

export interface PhaseChange__Output {
  'from': (_tern_node_v1alpha1_MigrationPhase__Output);
  'to': (_tern_node_v1alpha1_MigrationPhase__Output);
  'reason': (string);
}
