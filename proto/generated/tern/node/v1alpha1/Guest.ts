// Original file: proto/tern/node/v1alpha1/control.proto

import type { GuestSpec as _tern_node_v1alpha1_GuestSpec, GuestSpec__Output as _tern_node_v1alpha1_GuestSpec__Output } from '../../../tern/node/v1alpha1/GuestSpec.js';
import type { GuestPhase as _tern_node_v1alpha1_GuestPhase, GuestPhase__Output as _tern_node_v1alpha1_GuestPhase__Output } from '../../../tern/node/v1alpha1/GuestPhase.js';
import type { Accelerator as _tern_node_v1alpha1_Accelerator, Accelerator__Output as _tern_node_v1alpha1_Accelerator__Output } from '../../../tern/node/v1alpha1/Accelerator.js';
import type { NicAttachment as _tern_node_v1alpha1_NicAttachment, NicAttachment__Output as _tern_node_v1alpha1_NicAttachment__Output } from '../../../tern/node/v1alpha1/NicAttachment.js';
import type { LocalDiskImage as _tern_node_v1alpha1_LocalDiskImage, LocalDiskImage__Output as _tern_node_v1alpha1_LocalDiskImage__Output } from '../../../tern/node/v1alpha1/LocalDiskImage.js';

export interface Guest {
  'spec'?: (_tern_node_v1alpha1_GuestSpec | null);
  'phase'?: (_tern_node_v1alpha1_GuestPhase);
  /**
   * QEMU's process id; 0 when no process runs.
   */
  'pid'?: (number);
  /**
   * Why a STOPPED or FAILED guest is in its phase: one machine-readable CamelCase word (empty in other phases),
   * and a human-readable message (exit status or signal, what a stop did, the last console lines of a failure).
   * STOPPED: 'PoweredOff' (the guest powered off on the daemon's ACPI power button), 'PowerOffTimedOut' (it did
   * not within the stop timeout and QEMU was told to quit), 'Quit' (QEMU quit on request: a paused
   * guest, or a quit from another QMP client such as a migration source), 'Killed' (QEMU did not quit
   * and was killed), 'GuestShutdown' (the guest powered itself off).
   * FAILED: 'LaunchFailed' (QEMU could not be started or did not come up), 'Exited' (QEMU exited on its own),
   * 'Signaled' (QEMU was killed by a signal), 'ExitStatusUnknown' (QEMU is gone and its exit status
   * was not recorded), 'QmpUnreachable' (QEMU runs but its QMP socket does not answer).
   * Clients treat a reason they do not know like an empty one: the list may grow.
   */
  'reason'?: (string);
  'message'?: (string);
  /**
   * RFC 3339; empty until QEMU started.
   */
  'startedAt'?: (string);
  'accelerator'?: (_tern_node_v1alpha1_Accelerator);
  /**
   * How each NIC reaches the network on this node, in the order of spec.nics; empty before the guest's first
   * start. While the guest is STOPPED or FAILED it is what its last QEMU process had: a user-mode host port is
   * free again then, and the next start picks a new one.
   */
  'nics'?: (_tern_node_v1alpha1_NicAttachment)[];
  /**
   * GetGuest only (empty in ListGuests and WatchGuests): the image of each `storage: local` disk as this node holds
   * it, read from the image file, in the order of spec.disks; a disk whose image cannot be read is left out. What a
   * migration target needs to create its copy (PrepareIncomingRequest.local_disks).
   */
  'localDisks'?: (_tern_node_v1alpha1_LocalDiskImage)[];
}

export interface Guest__Output {
  'spec': (_tern_node_v1alpha1_GuestSpec__Output | null);
  'phase': (_tern_node_v1alpha1_GuestPhase__Output);
  /**
   * QEMU's process id; 0 when no process runs.
   */
  'pid': (number);
  /**
   * Why a STOPPED or FAILED guest is in its phase: one machine-readable CamelCase word (empty in other phases),
   * and a human-readable message (exit status or signal, what a stop did, the last console lines of a failure).
   * STOPPED: 'PoweredOff' (the guest powered off on the daemon's ACPI power button), 'PowerOffTimedOut' (it did
   * not within the stop timeout and QEMU was told to quit), 'Quit' (QEMU quit on request: a paused
   * guest, or a quit from another QMP client such as a migration source), 'Killed' (QEMU did not quit
   * and was killed), 'GuestShutdown' (the guest powered itself off).
   * FAILED: 'LaunchFailed' (QEMU could not be started or did not come up), 'Exited' (QEMU exited on its own),
   * 'Signaled' (QEMU was killed by a signal), 'ExitStatusUnknown' (QEMU is gone and its exit status
   * was not recorded), 'QmpUnreachable' (QEMU runs but its QMP socket does not answer).
   * Clients treat a reason they do not know like an empty one: the list may grow.
   */
  'reason': (string);
  'message': (string);
  /**
   * RFC 3339; empty until QEMU started.
   */
  'startedAt': (string);
  'accelerator': (_tern_node_v1alpha1_Accelerator__Output);
  /**
   * How each NIC reaches the network on this node, in the order of spec.nics; empty before the guest's first
   * start. While the guest is STOPPED or FAILED it is what its last QEMU process had: a user-mode host port is
   * free again then, and the next start picks a new one.
   */
  'nics': (_tern_node_v1alpha1_NicAttachment__Output)[];
  /**
   * GetGuest only (empty in ListGuests and WatchGuests): the image of each `storage: local` disk as this node holds
   * it, read from the image file, in the order of spec.disks; a disk whose image cannot be read is left out. What a
   * migration target needs to create its copy (PrepareIncomingRequest.local_disks).
   */
  'localDisks': (_tern_node_v1alpha1_LocalDiskImage__Output)[];
}
