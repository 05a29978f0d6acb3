// Original file: proto/tern/node/v1alpha1/control.proto


export interface DeleteGuestRequest {
  'name'?: (string);
}

export interface DeleteGuestRequest__Output {
  'name': (string);
}
