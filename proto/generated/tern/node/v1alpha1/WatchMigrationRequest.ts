// Original file: proto/tern/node/v1alpha1/migration.proto


export interface WatchMigrationRequest {
  'migrationId'?: (string);
  /**
   * Least interval between two PROGRESS events; 0 = 1000 ms, at least 100 ms.
   */
  'progressIntervalMs'?: (number);
}

export interface WatchMigrationRequest__Output {
  'migrationId': (string);
  /**
   * Least interval between two PROGRESS events; 0 = 1000 ms, at least 100 ms.
   */
  'progressIntervalMs': (number);
}
