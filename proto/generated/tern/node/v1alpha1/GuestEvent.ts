// Original file: proto/tern/node/v1alpha1/control.proto

import type { Guest as _tern_node_v1alpha1_Guest, Guest__Output as _tern_node_v1alpha1_Guest__Output } from '../../../tern/node/v1alpha1/Guest.js';

// Original file: proto/tern/node/v1alpha1/control.proto

export const _tern_node_v1alpha1_GuestEvent_Type = {
  TYPE_UNSPECIFIED: 'TYPE_UNSPECIFIED',
  /**
   * A guest the watcher has not seen: sent for each existing guest first, and for each new guest later.
   */
  TYPE_ADDED: 'TYPE_ADDED',
  TYPE_MODIFIED: 'TYPE_MODIFIED',
  TYPE_DELETED: 'TYPE_DELETED',
  /**
   * The initial list is complete; carries no guest.
   */
  TYPE_SYNCED: 'TYPE_SYNCED',
} as const;

export type _tern_node_v1alpha1_GuestEvent_Type =
  | 'TYPE_UNSPECIFIED'
  | 0
  /**
   * A guest the watcher has not seen: sent for each existing guest first, and for each new guest later.
   */
  | 'TYPE_ADDED'
  | 1
  | 'TYPE_MODIFIED'
  | 2
  | 'TYPE_DELETED'
  | 3
  /**
   * The initial list is complete; carries no guest.
   */
  | 'TYPE_SYNCED'
  | 4

export type _tern_node_v1alpha1_GuestEvent_Type__Output = typeof _tern_node_v1alpha1_GuestEvent_Type[keyof typeof _tern_node_v1alpha1_GuestEvent_Type]

export interface GuestEvent {
  'type'?: (_tern_node_v1alpha1_GuestEvent_Type);
  'guest'?: (_tern_node_v1alpha1_Guest | null);
}

export interface GuestEvent__Output {
  'type': (_tern_node_v1alpha1_GuestEvent_Type__Output);
  'guest': (_tern_node_v1alpha1_Guest__Output | null);
}
