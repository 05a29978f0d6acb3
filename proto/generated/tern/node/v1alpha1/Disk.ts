// Original file: proto/tern/node/v1alpha1/control.proto

import type { DiskFormat as _tern_node_v1alpha1_DiskFormat, DiskFormat__Output as _tern_node_v1alpha1_DiskFormat__Output } from '../../../tern/node/v1alpha1/DiskFormat.js';

export interface Disk {
  /**
   * Absolute path under one of the daemon's allowed roots.
   */
  'path'?: (string);
  'readOnly'?: (boolean);
  'format'?: (_tern_node_v1alpha1_DiskFormat);
}

export interface Disk__Output {
  /**
   * Absolute path under one of the daemon's allowed roots.
   */
  'path': (string);
  'readOnly': (boolean);
  'format': (_tern_node_v1alpha1_DiskFormat__Output);
}
