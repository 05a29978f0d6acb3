// ReleaseSource's retain_local_disks (migration.proto, HandOverRequest): where the source daemon moves a retained
// local disk image, and where the operator tells the user to find it. One rule for both sides of the contract.

/** Next to the image, named after the migration, so the disk's own path is free for a later migration back. */
export const retainedImagePath = (file: string, migrationId: string): string =>
  `${file}.tern-retained-${migrationId}`;
