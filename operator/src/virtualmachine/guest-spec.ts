// VirtualMachine spec → the daemon's GuestSpec. The guest is named by the VM's UID (daemon/guest-key.ts), which is
// also QEMU's -uuid and stays the same on both ends of a migration; people see <namespace>/<name> (display_name).
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { VirtualMachine } from '../../../crds/index.js';
import { parseByteQuantity } from '../../../crds/index.js';
import {
  WIRE_DISK_BUSES,
  WIRE_DISK_CACHES,
  WIRE_DISK_FORMATS,
  WIRE_DISK_IO_MODES,
  WIRE_DISK_STORAGES,
  type GuestSpec,
} from '../../../proto/index.js';
import { guestDisplayName, guestName } from '../daemon/guest-key.js';

const MiB = 1024 * 1024;

/**
 * The guest NIC's MAC: spec.network.macAddress, or one derived from the VM's UID — locally administered (bit 1 of
 * the first octet set) and unicast (bit 0 clear), stable for the VM's lifetime.
 */
export function vmMacAddress(vm: VirtualMachine): string {
  const configured = vm.spec.network?.macAddress;
  if (configured) return configured.toLowerCase();
  const uid = vm.metadata.uid;
  if (!uid) throw new Error(`VirtualMachine ${vm.metadata.name} has no uid`);
  const bytes = createHash('sha256').update(uid).digest().subarray(0, 6);
  bytes[0] = (bytes[0]! & 0xfc) | 0x02;
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Kernel command line words; the CRD's string is split on whitespace (quoted words are not supported). */
export function cmdlineWords(cmdline: string | undefined): string[] {
  return (cmdline ?? '').split(/\s+/).filter((word) => word !== '');
}

/**
 * The guest's IP address as its configuration fixes it: `tern.ip=<addr>/<prefix>` on the kernel command line,
 * which the project's guest init assigns to eth0 (guest/README.md). It is configured, not observed: Tern runs no
 * DHCP server and the daemon's API reports no address the guest holds, so for any other guest (disk boot, another
 * init) the address is unknown and left unset.
 */
export function configuredGuestAddress(vm: VirtualMachine): string | undefined {
  const kernel = vm.spec.boot.kernel;
  if (!kernel) return undefined;
  const word = cmdlineWords(kernel.cmdline).findLast((w) => w.startsWith('tern.ip='));
  const address = word?.slice('tern.ip='.length).split('/')[0];
  return address && isIP(address) !== 0 ? address : undefined;
}

export function toGuestSpec(vm: VirtualMachine): GuestSpec {
  const { name, uid } = vm.metadata;
  if (!name || !uid) throw new Error('a VirtualMachine read from the API has a name and a uid');
  const memoryBytes = parseByteQuantity(vm.spec.memory);
  const kernel = vm.spec.boot.kernel;
  return {
    name: guestName(vm),
    uuid: uid,
    displayName: guestDisplayName(vm),
    // The daemon lets the guest use images in this namespace's directory only (docs/images.md).
    namespace: vm.metadata.namespace ?? '',
    cpus: vm.spec.cpu.cores,
    memoryMib: Math.ceil(memoryBytes / MiB),
    ...(kernel
      ? {
          boot: {
            kernel: kernel.path,
            initrd: kernel.initrdPath ?? '',
            cmdline: cmdlineWords(kernel.cmdline),
          },
        }
      : {}),
    disks: (vm.spec.disks ?? []).map((disk) => ({
      name: disk.name,
      path: disk.path,
      readOnly: disk.readOnly ?? false,
      format: WIRE_DISK_FORMATS[disk.format ?? 'raw'],
      bus: WIRE_DISK_BUSES[disk.bus ?? 'virtio'],
      cache: WIRE_DISK_CACHES[disk.cache ?? 'writeback'],
      io: WIRE_DISK_IO_MODES[disk.io ?? 'threads'],
      storage: WIRE_DISK_STORAGES[disk.storage],
      boot: disk.name === vm.spec.boot.disk,
    })),
    nics: [{ mac: vmMacAddress(vm) }],
  };
}
