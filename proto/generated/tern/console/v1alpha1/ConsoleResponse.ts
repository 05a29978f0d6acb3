// Original file: proto/tern/console/v1alpha1/console.proto


export interface ConsoleResponse {
  /**
   * What the guest wrote.
   */
  'data'?: (Buffer | Uint8Array | string);
  /**
   * A line for the user from Tern itself (connected, moved to another node, ended), never guest output.
   */
  'notice'?: (string);
}

export interface ConsoleResponse__Output {
  /**
   * What the guest wrote.
   */
  'data': (Buffer);
  /**
   * A line for the user from Tern itself (connected, moved to another node, ended), never guest output.
   */
  'notice': (string);
}
