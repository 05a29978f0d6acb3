// Original file: proto/tern/node/v1alpha1/migration.proto


export interface WatchMigrationRequest {
  'migrationId'?: (string);
  /**
   * Least interval between two PROGRESS events; 0 = 1000 ms, at least 100 ms. A sample that comes sooner is held,
   * not lost: the newest one held follows when the interval is over, or at once before the next other event, so the
   * last PROGRESS before the OUTCOME is the migration's last sample.
   */
  'progressIntervalMs'?: (number);
}

export interface WatchMigrationRequest__Output {
  'migrationId': (string);
  /**
   * Least interval between two PROGRESS events; 0 = 1000 ms, at least 100 ms. A sample that comes sooner is held,
   * not lost: the newest one held follows when the interval is over, or at once before the next other event, so the
   * last PROGRESS before the OUTCOME is the migration's last sample.
   */
  'progressIntervalMs': (number);
}
