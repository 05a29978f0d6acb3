// Original file: proto/tern/node/v1alpha1/control.proto

import type { KernelBoot as _tern_node_v1alpha1_KernelBoot, KernelBoot__Output as _tern_node_v1alpha1_KernelBoot__Output } from '../../../tern/node/v1alpha1/KernelBoot.js';
import type { Disk as _tern_node_v1alpha1_Disk, Disk__Output as _tern_node_v1alpha1_Disk__Output } from '../../../tern/node/v1alpha1/Disk.js';
import type { Nic as _tern_node_v1alpha1_Nic, Nic__Output as _tern_node_v1alpha1_Nic__Output } from '../../../tern/node/v1alpha1/Nic.js';

export interface GuestSpec {
  /**
   * DNS-1123 label, unique on the node: the key of every call about the guest. The operator uses the
   * VirtualMachine's UID, so VMs of the same name in two namespaces never meet on a node.
   */
  'name'?: (string);
  /**
   * RFC 4122 UUID; identical on the source and the target of a migration.
   */
  'uuid'?: (string);
  'cpus'?: (number);
  'memoryMib'?: (number);
  /**
   * QEMU machine type; empty means the daemon's default.
   */
  'machine'?: (string);
  /**
   * QEMU CPU model; empty means the daemon's default ('max' under TCG, 'host' under KVM).
   */
  'cpuModel'?: (string);
  /**
   * Kernel boot. Unset (or every field empty): the firmware boots the disk marked `boot`. An initrd or cmdline
   * without a kernel is refused, never read as disk boot.
   */
  'boot'?: (_tern_node_v1alpha1_KernelBoot | null);
  'disks'?: (_tern_node_v1alpha1_Disk)[];
  'nics'?: (_tern_node_v1alpha1_Nic)[];
  /**
   * For people only, never a key: '<namespace>/<name>' of the VirtualMachine (one or two DNS-1123 labels joined by
   * '/'), shown as QEMU's -name and in the daemon's logs and metrics. Empty: the name.
   */
  'displayName'?: (string);
  /**
   * The VirtualMachine's namespace (a DNS-1123 label). The daemon lets the guest use images in its namespace's
   * directory (<image root>/<namespace>/, writable disks only there) and, read-only, under the shared image roots
   * (docs/images.md). Empty: shared images only.
   */
  'namespace'?: (string);
}

export interface GuestSpec__Output {
  /**
   * DNS-1123 label, unique on the node: the key of every call about the guest. The operator uses the
   * VirtualMachine's UID, so VMs of the same name in two namespaces never meet on a node.
   */
  'name': (string);
  /**
   * RFC 4122 UUID; identical on the source and the target of a migration.
   */
  'uuid': (string);
  'cpus': (number);
  'memoryMib': (number);
  /**
   * QEMU machine type; empty means the daemon's default.
   */
  'machine': (string);
  /**
   * QEMU CPU model; empty means the daemon's default ('max' under TCG, 'host' under KVM).
   */
  'cpuModel': (string);
  /**
   * Kernel boot. Unset (or every field empty): the firmware boots the disk marked `boot`. An initrd or cmdline
   * without a kernel is refused, never read as disk boot.
   */
  'boot': (_tern_node_v1alpha1_KernelBoot__Output | null);
  'disks': (_tern_node_v1alpha1_Disk__Output)[];
  'nics': (_tern_node_v1alpha1_Nic__Output)[];
  /**
   * For people only, never a key: '<namespace>/<name>' of the VirtualMachine (one or two DNS-1123 labels joined by
   * '/'), shown as QEMU's -name and in the daemon's logs and metrics. Empty: the name.
   */
  'displayName': (string);
  /**
   * The VirtualMachine's namespace (a DNS-1123 label). The daemon lets the guest use images in its namespace's
   * directory (<image root>/<namespace>/, writable disks only there) and, read-only, under the shared image roots
   * (docs/images.md). Empty: shared images only.
   */
  'namespace': (string);
}
