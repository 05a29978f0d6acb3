// Original file: proto/tern/node/v1alpha1/control.proto


export interface ConsoleOpen {
  /**
   * The guest's key.
   */
  'name'?: (string);
  /**
   * Send up to this many bytes of the console log first (capped at 64 KiB); 0: none.
   */
  'historyBytes'?: (number);
}

export interface ConsoleOpen__Output {
  /**
   * The guest's key.
   */
  'name': (string);
  /**
   * Send up to this many bytes of the console log first (capped at 64 KiB); 0: none.
   */
  'historyBytes': (number);
}
