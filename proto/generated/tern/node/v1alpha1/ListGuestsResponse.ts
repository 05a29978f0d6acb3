// Original file: proto/tern/node/v1alpha1/control.proto

import type { Guest as _tern_node_v1alpha1_Guest, Guest__Output as _tern_node_v1alpha1_Guest__Output } from '../../../tern/node/v1alpha1/Guest.js';

export interface ListGuestsResponse {
  'guests'?: (_tern_node_v1alpha1_Guest)[];
}

export interface ListGuestsResponse__Output {
  'guests': (_tern_node_v1alpha1_Guest__Output)[];
}
