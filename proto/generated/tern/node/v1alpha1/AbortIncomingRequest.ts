// Original file: proto/tern/node/v1alpha1/migration.proto


export interface AbortIncomingRequest {
  'migrationId'?: (string);
}

export interface AbortIncomingRequest__Output {
  'migrationId': (string);
}
