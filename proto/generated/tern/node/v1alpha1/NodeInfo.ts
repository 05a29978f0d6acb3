// Original file: proto/tern/node/v1alpha1/control.proto

import type { Resources as _tern_node_v1alpha1_Resources, Resources__Output as _tern_node_v1alpha1_Resources__Output } from '../../../tern/node/v1alpha1/Resources.js';
import type { Accelerator as _tern_node_v1alpha1_Accelerator, Accelerator__Output as _tern_node_v1alpha1_Accelerator__Output } from '../../../tern/node/v1alpha1/Accelerator.js';
import type { NetworkInfo as _tern_node_v1alpha1_NetworkInfo, NetworkInfo__Output as _tern_node_v1alpha1_NetworkInfo__Output } from '../../../tern/node/v1alpha1/NetworkInfo.js';

export interface NodeInfo {
  'nodeName'?: (string);
  'capacity'?: (_tern_node_v1alpha1_Resources | null);
  /**
   * Capacity minus what the node reserves for itself and the daemon.
   */
  'allocatable'?: (_tern_node_v1alpha1_Resources | null);
  'accelerator'?: (_tern_node_v1alpha1_Accelerator);
  /**
   * e.g. '10.0.2'.
   */
  'qemuVersion'?: (string);
  /**
   * The CPU model guests see by default: 'max' under TCG, the host's model name under KVM. A migration target
   * needs the same one.
   */
  'cpuModel'?: (string);
  /**
   * Sum of the guests' resources that are not Stopped or Failed.
   */
  'allocated'?: (_tern_node_v1alpha1_Resources | null);
  'guestCount'?: (number);
  /**
   * How guest NICs reach the network on this node.
   */
  'network'?: (_tern_node_v1alpha1_NetworkInfo | null);
}

export interface NodeInfo__Output {
  'nodeName': (string);
  'capacity': (_tern_node_v1alpha1_Resources__Output | null);
  /**
   * Capacity minus what the node reserves for itself and the daemon.
   */
  'allocatable': (_tern_node_v1alpha1_Resources__Output | null);
  'accelerator': (_tern_node_v1alpha1_Accelerator__Output);
  /**
   * e.g. '10.0.2'.
   */
  'qemuVersion': (string);
  /**
   * The CPU model guests see by default: 'max' under TCG, the host's model name under KVM. A migration target
   * needs the same one.
   */
  'cpuModel': (string);
  /**
   * Sum of the guests' resources that are not Stopped or Failed.
   */
  'allocated': (_tern_node_v1alpha1_Resources__Output | null);
  'guestCount': (number);
  /**
   * How guest NICs reach the network on this node.
   */
  'network': (_tern_node_v1alpha1_NetworkInfo__Output | null);
}
