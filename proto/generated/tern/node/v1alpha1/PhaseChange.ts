// Original file: proto/tern/node/v1alpha1/migration.proto

import type { MigrationPhase as _tern_node_v1alpha1_MigrationPhase, MigrationPhase__Output as _tern_node_v1alpha1_MigrationPhase__Output } from '../../../tern/node/v1alpha1/MigrationPhase.js';

/**
 * A phase change, or (from == to) a note within a phase: e.g. a post-copy paused while its broken stream is
 * being resumed, and resumed again.
 */
export interface PhaseChange {
  'from'?: (_tern_node_v1alpha1_MigrationPhase);
  'to'?: (_tern_node_v1alpha1_MigrationPhase);
  'reason'?: (string);
}

/**
 * A phase change, or (from == to) a note within a phase: e.g. a post-copy paused while its broken stream is
 * being resumed, and resumed again.
 */
export interface PhaseChange__Output {
  'from': (_tern_node_v1alpha1_MigrationPhase__Output);
  'to': (_tern_node_v1alpha1_MigrationPhase__Output);
  'reason': (string);
}
