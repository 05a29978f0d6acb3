// Original file: proto/tern/node/v1alpha1/control.proto

import type { DiskFormat as _tern_node_v1alpha1_DiskFormat, DiskFormat__Output as _tern_node_v1alpha1_DiskFormat__Output } from '../../../tern/node/v1alpha1/DiskFormat.js';
import type { DiskBus as _tern_node_v1alpha1_DiskBus, DiskBus__Output as _tern_node_v1alpha1_DiskBus__Output } from '../../../tern/node/v1alpha1/DiskBus.js';
import type { DiskCache as _tern_node_v1alpha1_DiskCache, DiskCache__Output as _tern_node_v1alpha1_DiskCache__Output } from '../../../tern/node/v1alpha1/DiskCache.js';
import type { DiskIo as _tern_node_v1alpha1_DiskIo, DiskIo__Output as _tern_node_v1alpha1_DiskIo__Output } from '../../../tern/node/v1alpha1/DiskIo.js';
import type { DiskStorage as _tern_node_v1alpha1_DiskStorage, DiskStorage__Output as _tern_node_v1alpha1_DiskStorage__Output } from '../../../tern/node/v1alpha1/DiskStorage.js';

export interface Disk {
  /**
   * Absolute path in the guest's namespace directory, or (read-only disks) under a shared image root.
   */
  'path'?: (string);
  'readOnly'?: (boolean);
  'format'?: (_tern_node_v1alpha1_DiskFormat);
  /**
   * The VirtualMachine's name for the disk (DNS-1123 label, unique in the guest): names its QEMU block nodes,
   * devices and mirror jobs, identical on both nodes of a migration.
   */
  'name'?: (string);
  'bus'?: (_tern_node_v1alpha1_DiskBus);
  'cache'?: (_tern_node_v1alpha1_DiskCache);
  'io'?: (_tern_node_v1alpha1_DiskIo);
  'storage'?: (_tern_node_v1alpha1_DiskStorage);
  /**
   * The firmware boots this disk (at most one; only when the guest has no kernel boot).
   */
  'boot'?: (boolean);
}

export interface Disk__Output {
  /**
   * Absolute path in the guest's namespace directory, or (read-only disks) under a shared image root.
   */
  'path': (string);
  'readOnly': (boolean);
  'format': (_tern_node_v1alpha1_DiskFormat__Output);
  /**
   * The VirtualMachine's name for the disk (DNS-1123 label, unique in the guest): names its QEMU block nodes,
   * devices and mirror jobs, identical on both nodes of a migration.
   */
  'name': (string);
  'bus': (_tern_node_v1alpha1_DiskBus__Output);
  'cache': (_tern_node_v1alpha1_DiskCache__Output);
  'io': (_tern_node_v1alpha1_DiskIo__Output);
  'storage': (_tern_node_v1alpha1_DiskStorage__Output);
  /**
   * The firmware boots this disk (at most one; only when the guest has no kernel boot).
   */
  'boot': (boolean);
}
