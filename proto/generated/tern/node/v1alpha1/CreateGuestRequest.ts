// Original file: proto/tern/node/v1alpha1/control.proto

import type { GuestSpec as _tern_node_v1alpha1_GuestSpec, GuestSpec__Output as _tern_node_v1alpha1_GuestSpec__Output } from '../../../tern/node/v1alpha1/GuestSpec.js';

export interface CreateGuestRequest {
  'spec'?: (_tern_node_v1alpha1_GuestSpec | null);
}

export interface CreateGuestRequest__Output {
  'spec': (_tern_node_v1alpha1_GuestSpec__Output | null);
}
