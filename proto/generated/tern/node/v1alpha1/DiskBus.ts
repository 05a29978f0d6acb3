// Original file: proto/tern/node/v1alpha1/control.proto

export const DiskBus = {
  /**
   * virtio-blk.
   */
  DISK_BUS_UNSPECIFIED: 'DISK_BUS_UNSPECIFIED',
  DISK_BUS_VIRTIO: 'DISK_BUS_VIRTIO',
  DISK_BUS_SATA: 'DISK_BUS_SATA',
} as const;

export type DiskBus =
  /**
   * virtio-blk.
   */
  | 'DISK_BUS_UNSPECIFIED'
  | 0
  | 'DISK_BUS_VIRTIO'
  | 1
  | 'DISK_BUS_SATA'
  | 2

export type DiskBus__Output = typeof DiskBus[keyof typeof DiskBus]
