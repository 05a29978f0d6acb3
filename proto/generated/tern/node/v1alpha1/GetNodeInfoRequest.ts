// Original file: proto/tern/node/v1alpha1/control.proto


export interface GetNodeInfoRequest {
}

export interface GetNodeInfoRequest__Output {
}
