// Original file: proto/tern/console/v1alpha1/console.proto

import type { AttachRequest as _tern_console_v1alpha1_AttachRequest, AttachRequest__Output as _tern_console_v1alpha1_AttachRequest__Output } from '../../../tern/console/v1alpha1/AttachRequest.js';

export interface ConsoleRequest {
  'attach'?: (_tern_console_v1alpha1_AttachRequest | null);
  'data'?: (Buffer | Uint8Array | string);
}

export interface ConsoleRequest__Output {
  'attach': (_tern_console_v1alpha1_AttachRequest__Output | null);
  'data': (Buffer);
}
