// Original file: proto/tern/node/v1alpha1/control.proto


export interface WatchGuestsRequest {
}

export interface WatchGuestsRequest__Output {
}
