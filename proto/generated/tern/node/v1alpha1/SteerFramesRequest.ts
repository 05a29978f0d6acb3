// Original file: proto/tern/node/v1alpha1/migration.proto


export interface SteerFramesRequest {
  'migrationId'?: (string);
}

export interface SteerFramesRequest__Output {
  'migrationId': (string);
}
