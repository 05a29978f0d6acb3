// Original file: proto/tern/node/v1alpha1/control.proto

import type { ConsoleOpen as _tern_node_v1alpha1_ConsoleOpen, ConsoleOpen__Output as _tern_node_v1alpha1_ConsoleOpen__Output } from '../../../tern/node/v1alpha1/ConsoleOpen.js';

export interface ConsoleInput {
  /**
   * First request only.
   */
  'open'?: (_tern_node_v1alpha1_ConsoleOpen | null);
  /**
   * Bytes for the guest's serial port (later requests).
   */
  'data'?: (Buffer | Uint8Array | string);
}

export interface ConsoleInput__Output {
  /**
   * First request only.
   */
  'open': (_tern_node_v1alpha1_ConsoleOpen__Output | null);
  /**
   * Bytes for the guest's serial port (later requests).
   */
  'data': (Buffer);
}
