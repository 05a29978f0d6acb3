// Original file: proto/tern/node/v1alpha1/migration.proto


export interface GetMigrationRequest {
  'migrationId'?: (string);
}

export interface GetMigrationRequest__Output {
  'migrationId': (string);
}
