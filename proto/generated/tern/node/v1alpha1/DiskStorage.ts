// Original file: proto/tern/node/v1alpha1/control.proto

export const DiskStorage = {
  /**
   * Refused: a migration must know whether to copy the disk.
   */
  DISK_STORAGE_UNSPECIFIED: 'DISK_STORAGE_UNSPECIFIED',
  /**
   * Every node sees the same image at the same path: a migration moves only the memory.
   */
  DISK_STORAGE_SHARED: 'DISK_STORAGE_SHARED',
  /**
   * The image lives on the node: a migration copies it live into a new image at the same path on the target.
   */
  DISK_STORAGE_LOCAL: 'DISK_STORAGE_LOCAL',
} as const;

export type DiskStorage =
  /**
   * Refused: a migration must know whether to copy the disk.
   */
  | 'DISK_STORAGE_UNSPECIFIED'
  | 0
  /**
   * Every node sees the same image at the same path: a migration moves only the memory.
   */
  | 'DISK_STORAGE_SHARED'
  | 1
  /**
   * The image lives on the node: a migration copies it live into a new image at the same path on the target.
   */
  | 'DISK_STORAGE_LOCAL'
  | 2

export type DiskStorage__Output = typeof DiskStorage[keyof typeof DiskStorage]
