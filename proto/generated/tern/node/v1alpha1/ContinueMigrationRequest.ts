// Original file: proto/tern/node/v1alpha1/migration.proto


export interface ContinueMigrationRequest {
  'migrationId'?: (string);
}

export interface ContinueMigrationRequest__Output {
  'migrationId': (string);
}
