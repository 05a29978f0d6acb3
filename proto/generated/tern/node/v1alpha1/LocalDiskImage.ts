// Original file: proto/tern/node/v1alpha1/control.proto

import type { DiskFormat as _tern_node_v1alpha1_DiskFormat, DiskFormat__Output as _tern_node_v1alpha1_DiskFormat__Output } from '../../../tern/node/v1alpha1/DiskFormat.js';
import type { Long } from '@grpc/proto-loader';

/**
 * A `storage: local` disk's image: a migration target creates a new one of the same format and virtual size at
 * the same path, on the same base image for a qcow2 overlay (only the overlay's own data is copied then).
 */
export interface LocalDiskImage {
  /**
   * The disk's name (Disk.name).
   */
  'name'?: (string);
  'virtualSizeBytes'?: (number | string | Long);
  /**
   * qcow2 only: the overlay's backing (base) image as its header names it, and the base's format; empty without.
   */
  'backingFile'?: (string);
  'backingFormat'?: (_tern_node_v1alpha1_DiskFormat);
  /**
   * qcow2 overlay only: the identity of the base image as the source node holds it ("<bytes>:sha256:<hex>" of the
   * base file); a target whose base at that path differs refuses the migration (the overlay would read other data).
   */
  'backingIdentity'?: (string);
}

/**
 * A `storage: local` disk's image: a migration target creates a new one of the same format and virtual size at
 * the same path, on the same base image for a qcow2 overlay (only the overlay's own data is copied then).
 */
export interface LocalDiskImage__Output {
  /**
   * The disk's name (Disk.name).
   */
  'name': (string);
  'virtualSizeBytes': (number);
  /**
   * qcow2 only: the overlay's backing (base) image as its header names it, and the base's format; empty without.
   */
  'backingFile': (string);
  'backingFormat': (_tern_node_v1alpha1_DiskFormat__Output);
  /**
   * qcow2 overlay only: the identity of the base image as the source node holds it ("<bytes>:sha256:<hex>" of the
   * base file); a target whose base at that path differs refuses the migration (the overlay would read other data).
   */
  'backingIdentity': (string);
}
