// Original file: proto/tern/node/v1alpha1/control.proto


export interface ListGuestsRequest {
}

export interface ListGuestsRequest__Output {
}
