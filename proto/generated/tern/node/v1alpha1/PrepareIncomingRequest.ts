// Original file: proto/tern/node/v1alpha1/migration.proto

import type { GuestSpec as _tern_node_v1alpha1_GuestSpec, GuestSpec__Output as _tern_node_v1alpha1_GuestSpec__Output } from '../../../tern/node/v1alpha1/GuestSpec.js';
import type { Accelerator as _tern_node_v1alpha1_Accelerator, Accelerator__Output as _tern_node_v1alpha1_Accelerator__Output } from '../../../tern/node/v1alpha1/Accelerator.js';
import type { ChannelSettings as _tern_node_v1alpha1_ChannelSettings, ChannelSettings__Output as _tern_node_v1alpha1_ChannelSettings__Output } from '../../../tern/node/v1alpha1/ChannelSettings.js';
import type { LocalDiskImage as _tern_node_v1alpha1_LocalDiskImage, LocalDiskImage__Output as _tern_node_v1alpha1_LocalDiskImage__Output } from '../../../tern/node/v1alpha1/LocalDiskImage.js';

export interface PrepareIncomingRequest {
  /**
   * 1-63 of [a-z0-9-], starting and ending alphanumeric (a Migration's uid fits).
   */
  'migrationId'?: (string);
  /**
   * The source guest's spec as GetGuest reports it.
   */
  'spec'?: (_tern_node_v1alpha1_GuestSpec | null);
  /**
   * The source's accelerator: the target must run the same one, and pins the CPU model default from it.
   */
  'sourceAccelerator'?: (_tern_node_v1alpha1_Accelerator);
  'channel'?: (_tern_node_v1alpha1_ChannelSettings | null);
  /**
   * One-time token (32 random bytes, base64url): the pre-shared key of the migration stream's TLS.
   */
  'token'?: (string);
  /**
   * How long the target accepts a source connection with the token; 0 = 300 s. An incoming QEMU still not
   * reached by a source some seconds after it is removed (stage TARGET_FAILED).
   */
  'tokenTtlSeconds'?: (number);
  /**
   * One entry per `storage: local` disk of spec (the source's Guest.local_disks): the target creates each image
   * (refusing a path where a file exists), exports it over NBD behind the same TLS, and removes it again if the
   * migration does not reach ResumeTarget.
   */
  'localDisks'?: (_tern_node_v1alpha1_LocalDiskImage)[];
  /**
   * The migration policy's completion_timeout_per_gib_seconds (0 = its default, 150): the source copies the local
   * disks under that bound per GiB before the memory stream connects, so the token covers it on top of its TTL.
   */
  'diskCopyTimeoutPerGibSeconds'?: (number);
}

export interface PrepareIncomingRequest__Output {
  /**
   * 1-63 of [a-z0-9-], starting and ending alphanumeric (a Migration's uid fits).
   */
  'migrationId': (string);
  /**
   * The source guest's spec as GetGuest reports it.
   */
  'spec': (_tern_node_v1alpha1_GuestSpec__Output | null);
  /**
   * The source's accelerator: the target must run the same one, and pins the CPU model default from it.
   */
  'sourceAccelerator': (_tern_node_v1alpha1_Accelerator__Output);
  'channel': (_tern_node_v1alpha1_ChannelSettings__Output | null);
  /**
   * One-time token (32 random bytes, base64url): the pre-shared key of the migration stream's TLS.
   */
  'token': (string);
  /**
   * How long the target accepts a source connection with the token; 0 = 300 s. An incoming QEMU still not
   * reached by a source some seconds after it is removed (stage TARGET_FAILED).
   */
  'tokenTtlSeconds': (number);
  /**
   * One entry per `storage: local` disk of spec (the source's Guest.local_disks): the target creates each image
   * (refusing a path where a file exists), exports it over NBD behind the same TLS, and removes it again if the
   * migration does not reach ResumeTarget.
   */
  'localDisks': (_tern_node_v1alpha1_LocalDiskImage__Output)[];
  /**
   * The migration policy's completion_timeout_per_gib_seconds (0 = its default, 150): the source copies the local
   * disks under that bound per GiB before the memory stream connects, so the token covers it on top of its TTL.
   */
  'diskCopyTimeoutPerGibSeconds': (number);
}
