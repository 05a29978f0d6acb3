// Original file: proto/tern/node/v1alpha1/migration.proto

export const MigrationRole = {
  MIGRATION_ROLE_UNSPECIFIED: 'MIGRATION_ROLE_UNSPECIFIED',
  MIGRATION_ROLE_SOURCE: 'MIGRATION_ROLE_SOURCE',
  MIGRATION_ROLE_TARGET: 'MIGRATION_ROLE_TARGET',
} as const;

export type MigrationRole =
  | 'MIGRATION_ROLE_UNSPECIFIED'
  | 0
  | 'MIGRATION_ROLE_SOURCE'
  | 1
  | 'MIGRATION_ROLE_TARGET'
  | 2

export type MigrationRole__Output = typeof MigrationRole[keyof typeof MigrationRole]
