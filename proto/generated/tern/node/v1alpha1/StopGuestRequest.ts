// Original file: proto/tern/node/v1alpha1/control.proto


export interface StopGuestRequest {
  'name'?: (string);
  /**
   * How long the guest may take to power down before QEMU is told to quit; 0 means the daemon's default.
   */
  'timeoutMs'?: (number);
}

export interface StopGuestRequest__Output {
  'name': (string);
  /**
   * How long the guest may take to power down before QEMU is told to quit; 0 means the daemon's default.
   */
  'timeoutMs': (number);
}
