// Original file: proto/tern/node/v1alpha1/migration.proto


export interface ReadClockRequest {
}

export interface ReadClockRequest__Output {
}
