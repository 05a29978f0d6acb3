// Original file: proto/tern/node/v1alpha1/control.proto


export interface DeleteGuestResponse {
}

export interface DeleteGuestResponse__Output {
}
