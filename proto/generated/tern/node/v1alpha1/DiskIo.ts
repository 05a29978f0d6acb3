// Original file: proto/tern/node/v1alpha1/control.proto

export const DiskIo = {
  /**
   * A thread pool.
   */
  DISK_IO_UNSPECIFIED: 'DISK_IO_UNSPECIFIED',
  DISK_IO_THREADS: 'DISK_IO_THREADS',
  /**
   * Linux native AIO; needs DISK_CACHE_NONE.
   */
  DISK_IO_NATIVE: 'DISK_IO_NATIVE',
  DISK_IO_IO_URING: 'DISK_IO_IO_URING',
} as const;

export type DiskIo =
  /**
   * A thread pool.
   */
  | 'DISK_IO_UNSPECIFIED'
  | 0
  | 'DISK_IO_THREADS'
  | 1
  /**
   * Linux native AIO; needs DISK_CACHE_NONE.
   */
  | 'DISK_IO_NATIVE'
  | 2
  | 'DISK_IO_IO_URING'
  | 3

export type DiskIo__Output = typeof DiskIo[keyof typeof DiskIo]
