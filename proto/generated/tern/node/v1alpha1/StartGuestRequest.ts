// Original file: proto/tern/node/v1alpha1/control.proto


export interface StartGuestRequest {
  'name'?: (string);
}

export interface StartGuestRequest__Output {
  'name': (string);
}
