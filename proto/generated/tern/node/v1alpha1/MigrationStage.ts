// Original file: proto/tern/node/v1alpha1/migration.proto

/**
 * Where a migration stands on this daemon.
 */
export const MigrationStage = {
  MIGRATION_STAGE_UNSPECIFIED: 'MIGRATION_STAGE_UNSPECIFIED',
  /**
   * Source: QEMU migrates. Target: the incoming QEMU listens or loads.
   */
  MIGRATION_STAGE_RUNNING: 'MIGRATION_STAGE_RUNNING',
  /**
   * Target: the guest is loaded and paused, waiting for ResumeTarget or AbortIncoming.
   */
  MIGRATION_STAGE_LOADED: 'MIGRATION_STAGE_LOADED',
  /**
   * Source: the outcome is known (see outcome); waiting for ReleaseSource or ResumeSource.
   */
  MIGRATION_STAGE_FINISHED: 'MIGRATION_STAGE_FINISHED',
  /**
   * Target resumed (it owns the guest now).
   */
  MIGRATION_STAGE_RESUMED: 'MIGRATION_STAGE_RESUMED',
  /**
   * Source released (the guest left this node).
   */
  MIGRATION_STAGE_RELEASED: 'MIGRATION_STAGE_RELEASED',
  /**
   * Source runs the guest again after a failed or cancelled migration.
   */
  MIGRATION_STAGE_SOURCE_RESUMED: 'MIGRATION_STAGE_SOURCE_RESUMED',
  /**
   * Target aborted: nothing left here.
   */
  MIGRATION_STAGE_ABORTED: 'MIGRATION_STAGE_ABORTED',
  /**
   * Target: the incoming migration failed; AbortIncoming cleans up.
   */
  MIGRATION_STAGE_TARGET_FAILED: 'MIGRATION_STAGE_TARGET_FAILED',
  /**
   * Source: the source QEMU is gone (it died), so nothing here runs the guest or can resume it; the VM's restart
   * policy decides whether it starts again.
   */
  MIGRATION_STAGE_SOURCE_LOST: 'MIGRATION_STAGE_SOURCE_LOST',
  /**
   * Source: StartMigration is under way (QEMU is being configured and asked to migrate); RUNNING follows, or the
   * migration is forgotten again if the start is refused.
   */
  MIGRATION_STAGE_STARTING: 'MIGRATION_STAGE_STARTING',
  /**
   * Target: ResumeTarget is under way (the loaded guest is being started); RESUMED follows. An AbortIncoming
   * meanwhile waits for it and is refused once the guest runs.
   */
  MIGRATION_STAGE_RESUMING: 'MIGRATION_STAGE_RESUMING',
} as const;

/**
 * Where a migration stands on this daemon.
 */
export type MigrationStage =
  | 'MIGRATION_STAGE_UNSPECIFIED'
  | 0
  /**
   * Source: QEMU migrates. Target: the incoming QEMU listens or loads.
   */
  | 'MIGRATION_STAGE_RUNNING'
  | 1
  /**
   * Target: the guest is loaded and paused, waiting for ResumeTarget or AbortIncoming.
   */
  | 'MIGRATION_STAGE_LOADED'
  | 2
  /**
   * Source: the outcome is known (see outcome); waiting for ReleaseSource or ResumeSource.
   */
  | 'MIGRATION_STAGE_FINISHED'
  | 3
  /**
   * Target resumed (it owns the guest now).
   */
  | 'MIGRATION_STAGE_RESUMED'
  | 4
  /**
   * Source released (the guest left this node).
   */
  | 'MIGRATION_STAGE_RELEASED'
  | 5
  /**
   * Source runs the guest again after a failed or cancelled migration.
   */
  | 'MIGRATION_STAGE_SOURCE_RESUMED'
  | 6
  /**
   * Target aborted: nothing left here.
   */
  | 'MIGRATION_STAGE_ABORTED'
  | 7
  /**
   * Target: the incoming migration failed; AbortIncoming cleans up.
   */
  | 'MIGRATION_STAGE_TARGET_FAILED'
  | 8
  /**
   * Source: the source QEMU is gone (it died), so nothing here runs the guest or can resume it; the VM's restart
   * policy decides whether it starts again.
   */
  | 'MIGRATION_STAGE_SOURCE_LOST'
  | 9
  /**
   * Source: StartMigration is under way (QEMU is being configured and asked to migrate); RUNNING follows, or the
   * migration is forgotten again if the start is refused.
   */
  | 'MIGRATION_STAGE_STARTING'
  | 10
  /**
   * Target: ResumeTarget is under way (the loaded guest is being started); RESUMED follows. An AbortIncoming
   * meanwhile waits for it and is refused once the guest runs.
   */
  | 'MIGRATION_STAGE_RESUMING'
  | 11

/**
 * Where a migration stands on this daemon.
 */
export type MigrationStage__Output = typeof MigrationStage[keyof typeof MigrationStage]
