// Original file: proto/tern/node/v1alpha1/control.proto


export interface ConsoleOutput {
  /**
   * What the guest wrote.
   */
  'data'?: (Buffer | Uint8Array | string);
  /**
   * Set on the last message when the session ends because the guest stopped or was deleted: why.
   */
  'ended'?: (string);
}

export interface ConsoleOutput__Output {
  /**
   * What the guest wrote.
   */
  'data': (Buffer);
  /**
   * Set on the last message when the session ends because the guest stopped or was deleted: why.
   */
  'ended': (string);
}
