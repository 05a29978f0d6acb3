// Original file: proto/tern/node/v1alpha1/migration.proto

import type { MigrationRole as _tern_node_v1alpha1_MigrationRole, MigrationRole__Output as _tern_node_v1alpha1_MigrationRole__Output } from '../../../tern/node/v1alpha1/MigrationRole.js';
import type { MigrationStage as _tern_node_v1alpha1_MigrationStage, MigrationStage__Output as _tern_node_v1alpha1_MigrationStage__Output } from '../../../tern/node/v1alpha1/MigrationStage.js';
import type { MigrationPhase as _tern_node_v1alpha1_MigrationPhase, MigrationPhase__Output as _tern_node_v1alpha1_MigrationPhase__Output } from '../../../tern/node/v1alpha1/MigrationPhase.js';
import type { MigrationOutcome as _tern_node_v1alpha1_MigrationOutcome, MigrationOutcome__Output as _tern_node_v1alpha1_MigrationOutcome__Output } from '../../../tern/node/v1alpha1/MigrationOutcome.js';
import type { TargetSwitchover as _tern_node_v1alpha1_TargetSwitchover, TargetSwitchover__Output as _tern_node_v1alpha1_TargetSwitchover__Output } from '../../../tern/node/v1alpha1/TargetSwitchover.js';

export interface MigrationState {
  'migrationId'?: (string);
  'role'?: (_tern_node_v1alpha1_MigrationRole);
  'guest'?: (string);
  'stage'?: (_tern_node_v1alpha1_MigrationStage);
  /**
   * Source: the engine's current phase.
   */
  'phase'?: (_tern_node_v1alpha1_MigrationPhase);
  /**
   * Why the migration is where it is (e.g. the target's failure, a cancel reason).
   */
  'message'?: (string);
  /**
   * Source, once known.
   */
  'outcome'?: (_tern_node_v1alpha1_MigrationOutcome | null);
  /**
   * Target, RESUMED only: its QEMU died after the daemon told it to resume the guest (`cont` sent, its effect
   * unknown). The guest may have run here, so the source's paused copy is stale, and its state is gone: the source
   * is released, never resumed, and the guest starts again here by its restartPolicy.
   */
  'guestLost'?: (boolean);
  /**
   * Target, once loaded: the switchover's steps on this node's clock.
   */
  'switchover'?: (_tern_node_v1alpha1_TargetSwitchover | null);
  /**
   * Source, RELEASED: where the local disk images it kept (ReleaseSource's retain_local_disks) now are on this node,
   * each moved aside to `<path>.tern-retained-<migration_id>`. Kept in the daemon's tombstone, so a retried
   * ReleaseSource or GetMigration tells a later run of the operator what an earlier one retained.
   */
  'retainedLocalImages'?: (string)[];
}

export interface MigrationState__Output {
  'migrationId': (string);
  'role': (_tern_node_v1alpha1_MigrationRole__Output);
  'guest': (string);
  'stage': (_tern_node_v1alpha1_MigrationStage__Output);
  /**
   * Source: the engine's current phase.
   */
  'phase': (_tern_node_v1alpha1_MigrationPhase__Output);
  /**
   * Why the migration is where it is (e.g. the target's failure, a cancel reason).
   */
  'message': (string);
  /**
   * Source, once known.
   */
  'outcome': (_tern_node_v1alpha1_MigrationOutcome__Output | null);
  /**
   * Target, RESUMED only: its QEMU died after the daemon told it to resume the guest (`cont` sent, its effect
   * unknown). The guest may have run here, so the source's paused copy is stale, and its state is gone: the source
   * is released, never resumed, and the guest starts again here by its restartPolicy.
   */
  'guestLost': (boolean);
  /**
   * Target, once loaded: the switchover's steps on this node's clock.
   */
  'switchover': (_tern_node_v1alpha1_TargetSwitchover__Output | null);
  /**
   * Source, RELEASED: where the local disk images it kept (ReleaseSource's retain_local_disks) now are on this node,
   * each moved aside to `<path>.tern-retained-<migration_id>`. Kept in the daemon's tombstone, so a retried
   * ReleaseSource or GetMigration tells a later run of the operator what an earlier one retained.
   */
  'retainedLocalImages': (string)[];
}
