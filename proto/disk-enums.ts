// The wire's disk enums by the names the VirtualMachine API and the daemon's model use (crds/src/virtualmachine.ts,
// hypervisor-node/src/model/guest.ts): one table per field, shared by the operator (API → wire) and the daemon
// (wire → model), so both ends read the same words the same way.
import type { DiskBus } from './generated/tern/node/v1alpha1/DiskBus.js';
import type { DiskCache } from './generated/tern/node/v1alpha1/DiskCache.js';
import type { DiskFormat } from './generated/tern/node/v1alpha1/DiskFormat.js';
import type { DiskIo } from './generated/tern/node/v1alpha1/DiskIo.js';
import type { DiskStorage } from './generated/tern/node/v1alpha1/DiskStorage.js';

export const WIRE_DISK_FORMATS = {
  raw: 'DISK_FORMAT_RAW',
  qcow2: 'DISK_FORMAT_QCOW2',
} as const satisfies Record<string, DiskFormat>;
export const WIRE_DISK_BUSES = { virtio: 'DISK_BUS_VIRTIO', sata: 'DISK_BUS_SATA' } as const satisfies Record<
  string,
  DiskBus
>;
export const WIRE_DISK_CACHES = {
  writeback: 'DISK_CACHE_WRITEBACK',
  none: 'DISK_CACHE_NONE',
  writethrough: 'DISK_CACHE_WRITETHROUGH',
} as const satisfies Record<string, DiskCache>;
export const WIRE_DISK_IO_MODES = {
  threads: 'DISK_IO_THREADS',
  native: 'DISK_IO_NATIVE',
  io_uring: 'DISK_IO_IO_URING',
} as const satisfies Record<string, DiskIo>;
export const WIRE_DISK_STORAGES = {
  shared: 'DISK_STORAGE_SHARED',
  local: 'DISK_STORAGE_LOCAL',
} as const satisfies Record<string, DiskStorage>;

/** The key of `table` whose value is `wire`; undefined for UNSPECIFIED (the caller picks the default or refuses). */
export function fromWireEnum<K extends string>(table: Record<K, string>, wire: unknown): K | undefined {
  return (Object.keys(table) as K[]).find((key) => table[key] === wire);
}
