// Original file: proto/tern/node/v1alpha1/migration.proto


export interface CancelMigrationRequest {
  'migrationId'?: (string);
  'reason'?: (string);
}

export interface CancelMigrationRequest__Output {
  'migrationId': (string);
  'reason': (string);
}
