// Original file: proto/tern/node/v1alpha1/migration.proto


/**
 * What QEMU must agree on at both ends; derived from the policy by the operator.
 */
export interface ChannelSettings {
  'postCopy'?: (boolean);
  /**
   * Extra multifd connections; 0 = the main channel only.
   */
  'multifdChannels'?: (number);
  /**
   * Compression of the multifd channels: "none" (or empty) or "zstd" (needs multifd_channels > 0).
   */
  'multifdCompression'?: (string);
}

/**
 * What QEMU must agree on at both ends; derived from the policy by the operator.
 */
export interface ChannelSettings__Output {
  'postCopy': (boolean);
  /**
   * Extra multifd connections; 0 = the main channel only.
   */
  'multifdChannels': (number);
  /**
   * Compression of the multifd channels: "none" (or empty) or "zstd" (needs multifd_channels > 0).
   */
  'multifdCompression': (string);
}
