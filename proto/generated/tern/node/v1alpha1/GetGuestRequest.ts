// Original file: proto/tern/node/v1alpha1/control.proto


export interface GetGuestRequest {
  'name'?: (string);
}

export interface GetGuestRequest__Output {
  'name': (string);
}
