// Original file: proto/tern/node/v1alpha1/migration.proto


export interface AbortIncomingRequest {
  'migrationId'?: (string);
  /**
   * The ownership record names this node (the guest starts again here): the local disk images this migration
   * created hold the guest's disks and are kept. False: they are removed with the incoming QEMU.
   */
  'keepLocalDisks'?: (boolean);
}

export interface AbortIncomingRequest__Output {
  'migrationId': (string);
  /**
   * The ownership record names this node (the guest starts again here): the local disk images this migration
   * created hold the guest's disks and are kept. False: they are removed with the incoming QEMU.
   */
  'keepLocalDisks': (boolean);
}
