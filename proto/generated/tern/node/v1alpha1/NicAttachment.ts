// Original file: proto/tern/node/v1alpha1/control.proto

import type { TapBackend as _tern_node_v1alpha1_TapBackend, TapBackend__Output as _tern_node_v1alpha1_TapBackend__Output } from '../../../tern/node/v1alpha1/TapBackend.js';
import type { UserModeBackend as _tern_node_v1alpha1_UserModeBackend, UserModeBackend__Output as _tern_node_v1alpha1_UserModeBackend__Output } from '../../../tern/node/v1alpha1/UserModeBackend.js';

export interface NicAttachment {
  /**
   * The MAC of the spec.nics entry this attachment belongs to.
   */
  'mac'?: (string);
  /**
   * A tap device on the node's bridge (NetworkInfo.bridge).
   */
  'tap'?: (_tern_node_v1alpha1_TapBackend | null);
  /**
   * QEMU user-mode networking: one guest TCP port forwarded from the node.
   */
  'user'?: (_tern_node_v1alpha1_UserModeBackend | null);
  'backend'?: "tap"|"user";
}

export interface NicAttachment__Output {
  /**
   * The MAC of the spec.nics entry this attachment belongs to.
   */
  'mac': (string);
  /**
   * A tap device on the node's bridge (NetworkInfo.bridge).
   */
  'tap'?: (_tern_node_v1alpha1_TapBackend__Output | null);
  /**
   * QEMU user-mode networking: one guest TCP port forwarded from the node.
   */
  'user'?: (_tern_node_v1alpha1_UserModeBackend__Output | null);
  'backend'?: "tap"|"user";
}
