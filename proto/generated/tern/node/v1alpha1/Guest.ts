// Original file: proto/tern/node/v1alpha1/control.proto

import type { GuestSpec as _tern_node_v1alpha1_GuestSpec, GuestSpec__Output as _tern_node_v1alpha1_GuestSpec__Output } from '../../../tern/node/v1alpha1/GuestSpec.js';
import type { GuestPhase as _tern_node_v1alpha1_GuestPhase, GuestPhase__Output as _tern_node_v1alpha1_GuestPhase__Output } from '../../../tern/node/v1alpha1/GuestPhase.js';
import type { Accelerator as _tern_node_v1alpha1_Accelerator, Accelerator__Output as _tern_node_v1alpha1_Accelerator__Output } from '../../../tern/node/v1alpha1/Accelerator.js';

export interface Guest {
  'spec'?: (_tern_node_v1alpha1_GuestSpec | null);
  'phase'?: (_tern_node_v1alpha1_GuestPhase);
  /**
   * QEMU's process id; 0 when no process runs.
   */
  'pid'?: (number);
  /**
   * Machine-readable cause of the phase (e.g. for FAILED: 'Exited', 'Signaled'), and a human-readable message.
   */
  'reason'?: (string);
  'message'?: (string);
  /**
   * RFC 3339; empty until QEMU started.
   */
  'startedAt'?: (string);
  'accelerator'?: (_tern_node_v1alpha1_Accelerator);
}

export interface Guest__Output {
  'spec': (_tern_node_v1alpha1_GuestSpec__Output | null);
  'phase': (_tern_node_v1alpha1_GuestPhase__Output);
  /**
   * QEMU's process id; 0 when no process runs.
   */
  'pid': (number);
  /**
   * Machine-readable cause of the phase (e.g. for FAILED: 'Exited', 'Signaled'), and a human-readable message.
   */
  'reason': (string);
  'message': (string);
  /**
   * RFC 3339; empty until QEMU started.
   */
  'startedAt': (string);
  'accelerator': (_tern_node_v1alpha1_Accelerator__Output);
}
