// Migration.status: the conditions, the daemon's wire progress and final figures as status, and the one writer of
// it (replace on the status subresource, compare-and-swap on resourceVersion, re-applied after a conflict). Each
// phase entered and each terminal phase also gets an Event; a terminal phase is counted in the metrics.
import { boundConditionMessage } from '../../../kube/messages.js';
import type {
  Migration,
  MigrationFailureReason,
  MigrationPhase,
  MigrationProgress,
  MigrationQuiesce,
  MigrationStatus,
  MigrationSwitchover,
} from '../../../crds/index.js';
import type {
  MigrationEvent__Output,
  MigrationOutcome__Output,
  WireQuiesceReport__Output,
} from '../../../proto/index.js';
import { findCondition, setCondition, type ConditionUpdate } from '../../../kube/conditions.js';
import { retryOnConflict } from '../runtime/conflict.js';
import type { KubeClient } from '../../../kube/client.js';
import type { EventRecorder } from '../../../kube/events.js';
import { Migrations } from '../../../crds/index.js';
import type { MigrationMetrics } from './metrics.js';
import { UNSTARTED_PHASES, statusWithPhase } from './state.js';
import { migrationConditions } from '../kstatus/conditions.js';

export const MIGRATION_CONDITIONS = {
  /** False while waiting (reason: ClusterLimit, OutboundLimit, InboundLimit) or refused (the failure reason). */
  Scheduled: 'Scheduled',
  /** Unknown while it runs (reason: the phase); True when Succeeded; False when Failed or Aborted. */
  Completed: 'Completed',
  /**
   * True (reason RunFailed) while runs of the Migration fail and are retried: the last error, how many runs failed
   * in a row and when the next starts. False (reason Progressed) once a run moved the Migration on.
   */
  Retrying: 'Retrying',
} as const;

/** Retries of a status write after a 409 Conflict (each re-reads the object first). */
export const CAS_RETRIES = 5;

export type TerminalPhase = 'Succeeded' | 'Failed' | 'Aborted';

export function scheduled(status: 'True' | 'False', reason: string, message: string): ConditionUpdate {
  return { type: MIGRATION_CONDITIONS.Scheduled, status, reason, message };
}

export function completed(
  status: 'True' | 'False' | 'Unknown',
  reason: string,
  message: string,
): ConditionUpdate {
  return { type: MIGRATION_CONDITIONS.Completed, status, reason, message };
}

/** A run failed on an error (`failedRuns` in a row) and the next one starts at `retryAt`. */
export function retrying(failedRuns: number, error: string, retryAt: Date): ConditionUpdate {
  return {
    type: MIGRATION_CONDITIONS.Retrying,
    status: 'True',
    reason: 'RunFailed',
    message: `${failedRuns} run${failedRuns === 1 ? '' : 's'} in a row failed; the next starts at ${retryAt.toISOString()}. Last error: ${error}`,
  };
}

/** Retrying=False once the Migration moved on (to `phase`); nothing when no run was being retried. */
export function progressed(status: MigrationStatus, phase: MigrationPhase): ConditionUpdate[] {
  if (findCondition(status.conditions, MIGRATION_CONDITIONS.Retrying)?.status !== 'True') return [];
  return [
    {
      type: MIGRATION_CONDITIONS.Retrying,
      status: 'False',
      reason: 'Progressed',
      message: `a run moved the Migration on to ${phase}`,
    },
  ];
}

/** The status's conditions with `updates` applied, stamped with the Migration's generation. */
export function withConditions(status: MigrationStatus, migration: Migration, updates: ConditionUpdate[]) {
  let conditions = status.conditions;
  for (const update of updates) {
    conditions = setCondition(conditions, { ...update, observedGeneration: migration.metadata.generation });
  }
  return conditions;
}

/** A progress sample of the source's WatchMigration stream as Migration.status.progress. */
export function toProgress(wire: NonNullable<MigrationEvent__Output['progress']>): MigrationProgress {
  const total = wire.totalBytes;
  const remaining = wire.remainingBytes;
  return {
    round: wire.round,
    transferredBytes: wire.transferredBytes,
    remainingBytes: remaining,
    totalBytes: total,
    dirtyBytesPerSecond: wire.dirtyRateBytesPerSec,
    throughputBytesPerSecond: Math.round((wire.throughputMbps * 1_000_000) / 8),
    expectedDowntimeMs: wire.expectedDowntimeMs,
    // Local disks are copied before the memory: until the memory starts, the percent is the disks'.
    percent:
      total > 0
        ? Math.min(100, Math.max(0, Math.round((100 * (total - remaining)) / total)))
        : wire.diskTotalBytes > 0
          ? Math.min(100, Math.round((100 * wire.diskTransferredBytes) / wire.diskTotalBytes))
          : 0,
    ...(wire.diskTotalBytes > 0
      ? { diskTransferredBytes: wire.diskTransferredBytes, diskTotalBytes: wire.diskTotalBytes }
      : {}),
  };
}

/** The source's Quiescing report (its outcome's `quiesce`) as Migration.status.quiesce. */
export function toQuiesce(wire: WireQuiesceReport__Output): MigrationQuiesce {
  return {
    durationMs: wire.durationMs,
    disks: wire.disks.map((disk) => ({
      name: disk.name,
      storage: disk.storage === 'DISK_STORAGE_LOCAL' ? 'local' : 'shared',
      writes: disk.writes,
      flushes: disk.flushes,
      writesAfterPause: disk.writesAfterPause,
      flushesAfterPause: disk.flushesAfterPause,
      otherAfterPause: disk.otherAfterPause,
      mirrorCompleted: disk.mirrorCompleted,
      flushed: disk.flushed,
    })),
    // The daemon's words may quote QEMU: bounded like the schema's field.
    ...(wire.error !== '' ? { error: boundText(wire.error, 1024) } : {}),
  };
}

function boundText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * `status` ended in a terminal phase with its message, reason and conditions (a failure before the source
 * started is also a refusal: Scheduled=False). After a COMPLETED outcome, QEMU's final figures replace the last
 * sampled progress, and the downtime gets QEMU's figure and, when known, the guest's gap as the operator saw it.
 */
export function terminalStatus(
  status: MigrationStatus,
  migration: Migration,
  phase: TerminalPhase,
  reason: MigrationFailureReason | undefined,
  message: string,
  at: Date,
  outcome?: MigrationOutcome__Output,
  guestGapMs?: number,
  switchover?: MigrationSwitchover,
  postCopyMs?: number,
): MigrationStatus {
  const next: MigrationStatus = {
    ...statusWithPhase(status, phase, at),
    // The daemons' words may quote QEMU (and through it the guest): bounded like a condition's message.
    message: boundConditionMessage(message),
    conditions: withConditions(status, migration, [
      ...(phase === 'Failed' && UNSTARTED_PHASES.includes(status.phase)
        ? [scheduled('False', reason!, message)]
        : []),
      completed(phase === 'Succeeded' ? 'True' : 'False', reason ?? phase, message),
      ...progressed(status, phase),
    ]),
  };
  if (reason) next.failureReason = reason;
  if (outcome?.result === 'RESULT_COMPLETED') {
    // QEMU's final figures, not the last sampled progress.
    if (outcome.downtimeMs > 0) next.downtime = { ...next.downtime, qemuMs: outcome.downtimeMs };
    if (guestGapMs !== undefined) next.downtime = { ...next.downtime, guestGapMs };
    if (postCopyMs !== undefined) next.downtime = { ...next.downtime, postCopyMs };
    if (switchover !== undefined) next.switchover = switchover;
    next.progress = {
      ...next.progress,
      round: outcome.rounds,
      transferredBytes: outcome.transferredBytes,
      remainingBytes: 0,
      percent: 100,
    };
  }
  return next;
}

export interface MigrationStatusWriterOptions {
  client: KubeClient;
  events: EventRecorder;
  metrics?: MigrationMetrics;
}

/** Writes Migration.status (always with Ready, Reconciling and Stalled); every write returns the Migration as stored (the next write's precondition). */
export class MigrationStatusWriter {
  constructor(private readonly options: MigrationStatusWriterOptions) {}

  /** Replaces the status (compare-and-swap); on a conflict reads the Migration again and re-applies `change`. */
  async write(
    migration: Migration,
    change: (status: MigrationStatus) => MigrationStatus,
  ): Promise<Migration> {
    const { client } = this.options;
    let current = migration;
    return retryOnConflict(CAS_RETRIES, async (attempt) => {
      if (attempt > 0) {
        current = await client.get<Migration>(Migrations, current.metadata.name!, current.metadata.namespace);
      }
      const changed = change(current.status ?? {});
      const generation = current.metadata.generation;
      // Ready, Reconciling and Stalled follow from the phase (kstatus/conditions.ts).
      const status = {
        ...changed,
        conditions: migrationConditions(changed, generation),
        observedGeneration: generation,
      };
      return client.replaceStatus<Migration>(Migrations, { ...current, status });
    });
  }

  /** Enters a (non-terminal) phase at `at`, with its Completed=Unknown condition and an Event. */
  async enter(
    migration: Migration,
    phase: MigrationPhase,
    at: Date,
    message: string,
    progress?: MigrationProgress,
  ): Promise<Migration> {
    const updated = await this.write(migration, (status) => ({
      ...statusWithPhase(status, phase, at),
      ...(progress ? { progress } : {}),
      conditions: withConditions(status, migration, [
        completed('Unknown', phase, message),
        ...progressed(status, phase),
      ]),
    }));
    await this.options.events.record(updated, 'Normal', phase, message);
    return updated;
  }

  /**
   * Says what a phase waits for without leaving it (e.g. a post-copy paused while its stream is recovered): the
   * Completed=Unknown condition's message and an Event.
   */
  async note(migration: Migration, phase: MigrationPhase, message: string): Promise<Migration> {
    const updated = await this.write(migration, (status) => ({
      ...status,
      conditions: withConditions(status, migration, [completed('Unknown', phase, message)]),
    }));
    await this.options.events.record(updated, 'Normal', phase, message);
    return updated;
  }

  /** Retrying=True with the run's error, the failures in a row and the next attempt's time (retrying()). */
  async runFailed(migration: Migration, update: ConditionUpdate): Promise<Migration> {
    return this.write(migration, (status) => ({
      ...status,
      conditions: withConditions(status, migration, [update]),
    }));
  }

  /** Writes a terminal phase with its reason, condition and Event. */
  async finish(
    migration: Migration,
    phase: TerminalPhase,
    reason: MigrationFailureReason | undefined,
    message: string,
    outcome?: MigrationOutcome__Output,
    guestGapMs?: number,
    switchover?: MigrationSwitchover,
    postCopyMs?: number,
  ): Promise<Migration> {
    const now = new Date();
    const updated = await this.write(migration, (status) =>
      terminalStatus(
        status,
        migration,
        phase,
        reason,
        message,
        now,
        outcome,
        guestGapMs,
        switchover,
        postCopyMs,
      ),
    );
    await this.options.events.record(
      updated,
      phase === 'Succeeded' ? 'Normal' : 'Warning',
      reason ?? phase,
      message,
    );
    this.options.metrics?.observeFinished(updated);
    return updated;
  }
}
