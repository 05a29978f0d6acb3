// Original file: proto/tern/node/v1alpha1/migration.proto

import type { MigrationState as _tern_node_v1alpha1_MigrationState, MigrationState__Output as _tern_node_v1alpha1_MigrationState__Output } from '../../../tern/node/v1alpha1/MigrationState.js';

export interface PrepareIncomingResponse {
  /**
   * host:port the incoming QEMU listens on, for StartMigrationRequest.target_data_endpoint.
   */
  'dataEndpoint'?: (string);
  'state'?: (_tern_node_v1alpha1_MigrationState | null);
  /**
   * host:port of the NBD server the source mirrors the local disks into (same address as data_endpoint, same
   * TLS); empty when the guest has no local disks.
   */
  'diskEndpoint'?: (string);
}

export interface PrepareIncomingResponse__Output {
  /**
   * host:port the incoming QEMU listens on, for StartMigrationRequest.target_data_endpoint.
   */
  'dataEndpoint': (string);
  'state': (_tern_node_v1alpha1_MigrationState__Output | null);
  /**
   * host:port of the NBD server the source mirrors the local disks into (same address as data_endpoint, same
   * TLS); empty when the guest has no local disks.
   */
  'diskEndpoint': (string);
}
