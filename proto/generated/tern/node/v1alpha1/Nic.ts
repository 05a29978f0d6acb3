// Original file: proto/tern/node/v1alpha1/control.proto


export interface Nic {
  /**
   * Locally administered unicast MAC, e.g. 52:54:00:12:34:56.
   */
  'mac'?: (string);
}

export interface Nic__Output {
  /**
   * Locally administered unicast MAC, e.g. 52:54:00:12:34:56.
   */
  'mac': (string);
}
