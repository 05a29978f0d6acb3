// Original file: proto/tern/node/v1alpha1/control.proto

import type { NetworkMode as _tern_node_v1alpha1_NetworkMode, NetworkMode__Output as _tern_node_v1alpha1_NetworkMode__Output } from '../../../tern/node/v1alpha1/NetworkMode.js';

export interface NetworkInfo {
  'mode'?: (_tern_node_v1alpha1_NetworkMode);
  /**
   * BRIDGE: the bridge the guests' taps join.
   */
  'bridge'?: (string);
  /**
   * USER: what guests cannot do in this mode, for humans (empty in BRIDGE mode).
   */
  'limitation'?: (string);
}

export interface NetworkInfo__Output {
  'mode': (_tern_node_v1alpha1_NetworkMode__Output);
  /**
   * BRIDGE: the bridge the guests' taps join.
   */
  'bridge': (string);
  /**
   * USER: what guests cannot do in this mode, for humans (empty in BRIDGE mode).
   */
  'limitation': (string);
}
