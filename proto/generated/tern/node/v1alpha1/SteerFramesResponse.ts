// Original file: proto/tern/node/v1alpha1/migration.proto


export interface SteerFramesResponse {
  'problems'?: (string)[];
}

export interface SteerFramesResponse__Output {
  'problems': (string)[];
}
