// Original file: proto/tern/node/v1alpha1/control.proto

export const DiskCache = {
  /**
   * Writeback: the host page cache; the guest's flushes reach stable storage.
   */
  DISK_CACHE_UNSPECIFIED: 'DISK_CACHE_UNSPECIFIED',
  DISK_CACHE_WRITEBACK: 'DISK_CACHE_WRITEBACK',
  /**
   * O_DIRECT; flushes still honoured.
   */
  DISK_CACHE_NONE: 'DISK_CACHE_NONE',
  DISK_CACHE_WRITETHROUGH: 'DISK_CACHE_WRITETHROUGH',
} as const;

export type DiskCache =
  /**
   * Writeback: the host page cache; the guest's flushes reach stable storage.
   */
  | 'DISK_CACHE_UNSPECIFIED'
  | 0
  | 'DISK_CACHE_WRITEBACK'
  | 1
  /**
   * O_DIRECT; flushes still honoured.
   */
  | 'DISK_CACHE_NONE'
  | 2
  | 'DISK_CACHE_WRITETHROUGH'
  | 3

export type DiskCache__Output = typeof DiskCache[keyof typeof DiskCache]
