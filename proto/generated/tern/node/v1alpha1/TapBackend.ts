// Original file: proto/tern/node/v1alpha1/control.proto


export interface TapBackend {
  /**
   * Host interface name, e.g. 'tt3f0c9d527d1a4c'.
   */
  'ifname'?: (string);
}

export interface TapBackend__Output {
  /**
   * Host interface name, e.g. 'tt3f0c9d527d1a4c'.
   */
  'ifname': (string);
}
