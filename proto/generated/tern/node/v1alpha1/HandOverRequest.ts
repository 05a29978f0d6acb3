// Original file: proto/tern/node/v1alpha1/migration.proto


export interface HandOverRequest {
  'migrationId'?: (string);
  /**
   * The node the caller's ownership record names now (after its compare-and-swap).
   */
  'recordedOwner'?: (string);
}

export interface HandOverRequest__Output {
  'migrationId': (string);
  /**
   * The node the caller's ownership record names now (after its compare-and-swap).
   */
  'recordedOwner': (string);
}
