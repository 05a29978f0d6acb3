// Original file: proto/tern/node/v1alpha1/control.proto

export const DiskFormat = {
  /**
   * Raw; a format is never guessed from the image's contents.
   */
  DISK_FORMAT_UNSPECIFIED: 'DISK_FORMAT_UNSPECIFIED',
  DISK_FORMAT_RAW: 'DISK_FORMAT_RAW',
  DISK_FORMAT_QCOW2: 'DISK_FORMAT_QCOW2',
} as const;

export type DiskFormat =
  /**
   * Raw; a format is never guessed from the image's contents.
   */
  | 'DISK_FORMAT_UNSPECIFIED'
  | 0
  | 'DISK_FORMAT_RAW'
  | 1
  | 'DISK_FORMAT_QCOW2'
  | 2

export type DiskFormat__Output = typeof DiskFormat[keyof typeof DiskFormat]
