// Original file: proto/tern/node/v1alpha1/migration.proto

import type { Long } from '@grpc/proto-loader';

export interface HandOverRequest {
  'migrationId'?: (string);
  /**
   * The node the caller's ownership record names now (after its compare-and-swap).
   */
  'recordedOwner'?: (string);
  /**
   * The record's epoch (VirtualMachine status.epoch) when it named recorded_owner; 0 = not sent (no check). The
   * daemon remembers the highest epoch it was shown per guest and refuses a hand-over call with a lower one
   * (PERMISSION_DENIED, as a stale fencing token): the record has moved since the caller read it.
   */
  'epoch'?: (number | string | Long);
  /**
   * ReleaseSource only: the target runs the guest (its ResumeTarget succeeded), so this node's copies of the guest's
   * local disks are stale and are removed. False (any release after a failure): they are kept at their paths, since
   * they may be the only complete copy.
   */
  'removeLocalDisks'?: (boolean);
  /**
   * ReleaseSource with remove_local_disks only: the local disks (by DiskSpec.name) whose copy on this node is kept
   * instead (the VM's disk says `sourceCopyAfterMigration: Retain`). Each is moved aside in its directory, to
   * `<path>.tern-retained-<migration_id>` (a hard link then an unlink: an existing file there is never replaced), so
   * a later migration back to this node finds the path free. A name that is not a local disk of the guest is refused
   * (INVALID_ARGUMENT) before anything is released; a daemon that no longer has the guest's spec retains them all.
   */
  'retainLocalDisks'?: (string)[];
}

export interface HandOverRequest__Output {
  'migrationId': (string);
  /**
   * The node the caller's ownership record names now (after its compare-and-swap).
   */
  'recordedOwner': (string);
  /**
   * The record's epoch (VirtualMachine status.epoch) when it named recorded_owner; 0 = not sent (no check). The
   * daemon remembers the highest epoch it was shown per guest and refuses a hand-over call with a lower one
   * (PERMISSION_DENIED, as a stale fencing token): the record has moved since the caller read it.
   */
  'epoch': (number);
  /**
   * ReleaseSource only: the target runs the guest (its ResumeTarget succeeded), so this node's copies of the guest's
   * local disks are stale and are removed. False (any release after a failure): they are kept at their paths, since
   * they may be the only complete copy.
   */
  'removeLocalDisks': (boolean);
  /**
   * ReleaseSource with remove_local_disks only: the local disks (by DiskSpec.name) whose copy on this node is kept
   * instead (the VM's disk says `sourceCopyAfterMigration: Retain`). Each is moved aside in its directory, to
   * `<path>.tern-retained-<migration_id>` (a hard link then an unlink: an existing file there is never replaced), so
   * a later migration back to this node finds the path free. A name that is not a local disk of the guest is refused
   * (INVALID_ARGUMENT) before anything is released; a daemon that no longer has the guest's spec retains them all.
   */
  'retainLocalDisks': (string)[];
}
