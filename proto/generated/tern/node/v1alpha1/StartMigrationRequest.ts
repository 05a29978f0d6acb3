// Original file: proto/tern/node/v1alpha1/migration.proto

import type { MigrationPolicy as _tern_node_v1alpha1_MigrationPolicy, MigrationPolicy__Output as _tern_node_v1alpha1_MigrationPolicy__Output } from '../../../tern/node/v1alpha1/MigrationPolicy.js';

export interface StartMigrationRequest {
  'migrationId'?: (string);
  'guest'?: (string);
  'targetDataEndpoint'?: (string);
  'token'?: (string);
  'policy'?: (_tern_node_v1alpha1_MigrationPolicy | null);
  /**
   * Stop in Quiescing with the guest paused until ContinueMigration (or CancelMigration), for callers that hand
   * over external resources (storage, addresses) themselves. The hold comes after the step sampled the disks'
   * counters and before it completes the local disks' mirrors; the switchover deadline still applies.
   */
  'holdInQuiescing'?: (boolean);
  /**
   * PrepareIncomingResponse.disk_endpoint; required when the guest has `storage: local` disks.
   */
  'targetDiskEndpoint'?: (string);
}

export interface StartMigrationRequest__Output {
  'migrationId': (string);
  'guest': (string);
  'targetDataEndpoint': (string);
  'token': (string);
  'policy': (_tern_node_v1alpha1_MigrationPolicy__Output | null);
  /**
   * Stop in Quiescing with the guest paused until ContinueMigration (or CancelMigration), for callers that hand
   * over external resources (storage, addresses) themselves. The hold comes after the step sampled the disks'
   * counters and before it completes the local disks' mirrors; the switchover deadline still applies.
   */
  'holdInQuiescing': (boolean);
  /**
   * PrepareIncomingResponse.disk_endpoint; required when the guest has `storage: local` disks.
   */
  'targetDiskEndpoint': (string);
}
