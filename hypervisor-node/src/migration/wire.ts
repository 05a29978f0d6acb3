// Conversions between the migration engine's types and the tern.node.v1alpha1 Migration wire messages.
import type {
  ConvergenceDecision as WireDecision,
  MigrationOutcome,
  WireMigrationPhase,
  WireMigrationPolicy__Output,
  WireMigrationProgress,
  WireQuiesceReport,
} from '../../../proto/index.js';
import { WIRE_DISK_STORAGES } from '../../../proto/index.js';
import type { EnginePhase } from './engine/phases.js';
import type { ResolvedMigrationPolicy } from './engine/policy.js';
import type { ProgressSample } from './engine/progress.js';
import type { QuiesceReport } from './engine/quiesce.js';
import type { ConvergenceRecord, SourceFailureCause, SourceOutcome } from './engine/source.js';

const WIRE_PHASES: Record<EnginePhase, WireMigrationPhase> = {
  Initializing: 'MIGRATION_PHASE_INITIALIZING',
  Copying: 'MIGRATION_PHASE_COPYING',
  Quiescing: 'MIGRATION_PHASE_QUIESCING',
  Freezing: 'MIGRATION_PHASE_FREEZING',
  PostCopy: 'MIGRATION_PHASE_POST_COPY',
  Completed: 'MIGRATION_PHASE_COMPLETED',
  Failed: 'MIGRATION_PHASE_FAILED',
  Aborted: 'MIGRATION_PHASE_ABORTED',
};

export function toWirePhase(phase: EnginePhase | undefined): WireMigrationPhase {
  return phase === undefined ? 'MIGRATION_PHASE_UNSPECIFIED' : WIRE_PHASES[phase];
}

/**
 * The overrides a request carries, for resolveMigrationPolicy: only the fields that were set (proto3 `optional`),
 * so the daemon's defaults fill the rest.
 */
export function policyOverridesFromWire(
  policy: WireMigrationPolicy__Output | null,
): Partial<ResolvedMigrationPolicy> {
  if (policy === null) return {};
  const overrides: Partial<ResolvedMigrationPolicy> = {};
  const copy = <K extends keyof ResolvedMigrationPolicy>(
    key: K,
    value: ResolvedMigrationPolicy[K] | undefined,
  ): void => {
    if (value !== undefined) overrides[key] = value;
  };
  copy('bandwidthBytesPerSec', policy.bandwidthBytesPerSec);
  copy('downtimeMs', policy.downtimeMs);
  copy('maxDowntimeMs', policy.maxDowntimeMs);
  copy('downtimeSteps', policy.downtimeSteps);
  copy('allowAutoConverge', policy.allowAutoConverge);
  if (policy.cpuThrottleSteps.length > 0) overrides.cpuThrottleSteps = [...policy.cpuThrottleSteps];
  copy('allowPostCopy', policy.allowPostCopy);
  copy('completionTimeoutPerGiBSeconds', policy.completionTimeoutPerGibSeconds);
  copy('stallTimeoutSeconds', policy.stallTimeoutSeconds);
  copy('stallRounds', policy.stallRounds);
  copy('multifdChannels', policy.multifdChannels);
  // A string on the wire; resolveMigrationPolicy refuses what is not a MultifdCompression.
  copy('multifdCompression', policy.multifdCompression as ResolvedMigrationPolicy['multifdCompression']);
  return overrides;
}

const whole = (value: number): number => Math.max(0, Math.round(value));

export function toWireProgress(progress: ProgressSample): WireMigrationProgress {
  return {
    status: progress.status,
    round: progress.round,
    transferredBytes: progress.transferredBytes,
    remainingBytes: progress.remainingBytes,
    totalBytes: progress.totalBytes,
    dirtyRateBytesPerSec: whole(progress.dirtyRateBytesPerSec),
    throughputMbps: progress.throughputMbps,
    expectedDowntimeMs: whole(progress.expectedDowntimeMs),
    cpuThrottlePercent: progress.cpuThrottlePercent,
    qemuTotalTimeMs: progress.qemuTotalTimeMs,
    diskTransferredBytes: progress.diskTransferredBytes ?? 0,
    diskTotalBytes: progress.diskTotalBytes ?? 0,
  };
}

export function toWireDecision(record: ConvergenceRecord): WireDecision {
  return {
    action: record.action,
    reason: record.reason,
    round: record.round,
    downtimeLimitMs: record.action === 'raise-downtime' ? record.downtimeLimitMs : 0,
    cpuThrottleCeiling: record.action === 'raise-throttle' ? record.cpuThrottleCeiling : 0,
    error: record.error ?? '',
    atUnixMs: record.atMs,
  };
}

const CAUSES = {
  Cancelled: 'CAUSE_CANCELLED',
  Timeout: 'CAUSE_TIMEOUT',
  Stalled: 'CAUSE_STALLED',
  Connection: 'CAUSE_CONNECTION',
  Source: 'CAUSE_SOURCE',
} as const satisfies Record<SourceFailureCause, string>;

const RESULTS = {
  Completed: 'RESULT_COMPLETED',
  Failed: 'RESULT_FAILED',
  Aborted: 'RESULT_ABORTED',
} as const;

export function toWireOutcome(outcome: SourceOutcome): MigrationOutcome {
  return {
    result: RESULTS[outcome.result],
    reason: outcome.reason,
    cause: outcome.cause === undefined ? 'CAUSE_UNSPECIFIED' : CAUSES[outcome.cause],
    durationMs: outcome.durationMs,
    qemuTotalTimeMs: outcome.qemuTotalTimeMs ?? 0,
    downtimeMs: outcome.downtimeMs ?? 0,
    setupTimeMs: outcome.setupTimeMs ?? 0,
    transferredBytes: outcome.transferredBytes ?? 0,
    rounds: outcome.rounds ?? 0,
    postCopy: outcome.postCopy,
    phases: outcome.phases.map((record) => ({
      phase: toWirePhase(record.phase),
      startedAtUnixMs: record.startedAtMs,
      durationMs: record.durationMs ?? 0,
    })),
    decisions: outcome.decisions.map(toWireDecision),
    sourceRunState: outcome.sourceRunState ?? '',
    ...(outcome.quiesce !== undefined ? { quiesce: toWireQuiesce(outcome.quiesce) } : {}),
    ...(outcome.switchover !== undefined
      ? {
          switchover: {
            pausedAtUnixUs: outcome.switchover.pausedAtUs ?? 0,
            continuedAtUnixUs: outcome.switchover.continuedAtUs ?? 0,
            completedAtUnixUs: outcome.switchover.completedAtUs ?? 0,
            outcomeAtUnixUs: outcome.switchover.outcomeAtUs ?? 0,
            quiescingAtUnixUs: outcome.switchover.quiescingAtUs ?? 0,
            continueSentAtUnixUs: outcome.switchover.continueSentAtUs ?? 0,
          },
        }
      : {}),
  };
}

export function toWireQuiesce(report: QuiesceReport): WireQuiesceReport {
  return {
    durationMs: whole(report.durationMs),
    disks: report.disks.map((disk) => ({
      name: disk.name,
      storage: WIRE_DISK_STORAGES[disk.storage],
      writes: disk.writes,
      flushes: disk.flushes,
      writesAfterPause: whole(disk.writesAfterPause),
      flushesAfterPause: whole(disk.flushesAfterPause),
      otherAfterPause: whole(disk.otherAfterPause),
      mirrorCompleted: disk.mirrorCompleted,
      flushed: disk.flushed,
    })),
    error: report.error ?? '',
  };
}
