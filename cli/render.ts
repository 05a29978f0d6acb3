// Text for a Migration's state, built only from its status: the live progress line, the phase lines and the
// final summary (ending like hpvmmigrate: "Guest migrated successfully.").
import { MIGRATION_PHASES, isTerminalMigrationPhase } from '../crds/index.js';
import type {
  Migration,
  MigrationPhase,
  MigrationProgress,
  MigrationQuiesce,
  MigrationStatus,
  MigrationSwitchover,
  SwitchoverStepName,
} from '../crds/index.js';
import { formatBytes, formatDuration, formatRate } from './format.js';

export const BAR_WIDTH = 24;

export interface PhaseSpan {
  phase: MigrationPhase;
  startedAt: number;
  /** Unknown while the phase runs. */
  durationMs?: number;
}

/**
 * The phases in the order they ran. A poller can miss a short phase entirely, but its timing stays in status;
 * a phase without durationMs that was followed by another one lasted until the next one started.
 */
export function phaseSpans(status: MigrationStatus | undefined): PhaseSpan[] {
  const order = (phase: MigrationPhase) => MIGRATION_PHASES.indexOf(phase);
  const sorted = [...(status?.phaseTimings ?? [])]
    .map((t) => ({ phase: t.phase, startedAt: Date.parse(t.startedAt), durationMs: t.durationMs }))
    .sort((a, b) => a.startedAt - b.startedAt || order(a.phase) - order(b.phase));
  return sorted.map((span, i) => {
    const next = sorted[i + 1];
    const durationMs = span.durationMs ?? (next ? Math.max(0, next.startedAt - span.startedAt) : undefined);
    return durationMs === undefined
      ? { phase: span.phase, startedAt: span.startedAt }
      : { ...span, durationMs };
  });
}

function percentOf(progress: MigrationProgress): number | undefined {
  if (progress.percent !== undefined) return progress.percent;
  const { totalBytes, remainingBytes } = progress;
  if (!totalBytes || remainingBytes === undefined) return undefined;
  return Math.max(0, Math.min(100, Math.floor(((totalBytes - remainingBytes) / totalBytes) * 100)));
}

export function progressBar(percent: number, width = BAR_WIDTH): string {
  const filled = Math.round((Math.max(0, Math.min(100, percent)) / 100) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/**
 * "round 3 [###---] 62% · throughput 410 MiB/s · 640 MiB sent · 384 MiB left · dirty 12.0 MiB/s"; absent fields
 * are left out. QEMU reports a throughput of 0 until it has measured one: `measuredRate` (the caller's own
 * bytes-over-time figure) stands in for it then, and without one no throughput is shown rather than "0 B/s".
 */
export function renderProgress(
  progress: MigrationProgress | undefined,
  withBar: boolean,
  measuredRate?: number,
): string {
  if (!progress) return '';
  const parts: string[] = [];
  if (progress.round !== undefined) parts.push(`round ${progress.round}`);
  const percent = percentOf(progress);
  if (percent !== undefined) parts.push(withBar ? `${progressBar(percent)} ${percent}%` : `${percent}%`);
  const details: string[] = [];
  // The throughput first: a terminal's live line is cut at its width, and the rate is what shows the copy moving.
  const throughput = progress.throughputBytesPerSecond || measuredRate;
  if (throughput) details.push(`throughput ${formatRate(throughput)}`);
  if (progress.transferredBytes !== undefined) details.push(`${formatBytes(progress.transferredBytes)} sent`);
  if (progress.remainingBytes !== undefined) details.push(`${formatBytes(progress.remainingBytes)} left`);
  if (progress.dirtyBytesPerSecond !== undefined)
    details.push(`dirty ${formatRate(progress.dirtyBytesPerSecond)}`);
  if (progress.expectedDowntimeMs !== undefined) {
    details.push(`expected downtime ${formatDuration(progress.expectedDowntimeMs)}`);
  }
  if (progress.diskTotalBytes !== undefined) {
    details.push(
      `disks ${formatBytes(progress.diskTransferredBytes ?? 0)} of ${formatBytes(progress.diskTotalBytes)} copied`,
    );
  }
  return [parts.join(' '), ...details].filter((p) => p !== '').join(' · ');
}

/** The live line of a running phase: "Copying: round 3 [###---] 62% · …" (or just "Copying…"). */
export function renderLiveLine(
  status: MigrationStatus | undefined,
  withBar: boolean,
  measuredRate?: number,
): string {
  const phase = status?.phase ?? 'Pending';
  const progress =
    phase === 'Copying' || phase === 'PostCopy'
      ? renderProgress(status?.progress, withBar, measuredRate)
      : '';
  return progress ? `${phase}: ${progress}` : `${phase}…`;
}

export function renderPhaseCompleted(span: PhaseSpan): string {
  const took = span.durationMs === undefined ? '' : ` in ${formatDuration(span.durationMs)}`;
  return `${span.phase} phase completed${took}.`;
}

export function migrationRef(migration: Migration): string {
  return `${migration.metadata.namespace ?? ''}/${migration.metadata.name ?? ''}`;
}

/** From the first recorded phase (or creation) to the start of the terminal phase. */
export function totalTimeMs(migration: Migration): number | undefined {
  const spans = phaseSpans(migration.status);
  const begin = spans[0]?.startedAt ?? Date.parse(migration.metadata.creationTimestamp ?? '');
  const terminal = spans.find((s) => isTerminalMigrationPhase(s.phase));
  const last = spans.at(-1);
  const end =
    terminal?.startedAt ?? (last?.durationMs !== undefined ? last.startedAt + last.durationMs : NaN);
  return Number.isFinite(begin) && Number.isFinite(end) ? Math.max(0, end - begin) : undefined;
}

/**
 * "12 ms, 2 of 2 disks flushed, no I/O after the pause (data local, mirror completed; log shared)", or the
 * step's failure; undefined when the source never paused the guest for the switchover.
 */
export function renderQuiesce(quiesce: MigrationQuiesce | undefined): string | undefined {
  if (!quiesce) return undefined;
  const disks = quiesce.disks.map((disk) => {
    const notes: string[] = [disk.storage];
    if (disk.storage === 'local')
      notes.push(disk.mirrorCompleted ? 'mirror completed' : 'mirror not completed');
    if (!disk.flushed) notes.push('not proven flushed');
    const moved = disk.writesAfterPause + disk.flushesAfterPause + disk.otherAfterPause;
    if (moved > 0) notes.push(`${moved} requests after the pause`);
    return `${disk.name} ${notes.join(', ')}`;
  });
  const flushed = quiesce.disks.filter((disk) => disk.flushed).length;
  const summary =
    quiesce.disks.length === 0
      ? 'no disks'
      : `${flushed} of ${quiesce.disks.length} disk${quiesce.disks.length === 1 ? '' : 's'} flushed` +
        (flushed === quiesce.disks.length ? ', no I/O after the pause' : '');
  const head = quiesce.error
    ? `${formatDuration(quiesce.durationMs)}, failed: ${quiesce.error}`
    : `${formatDuration(quiesce.durationMs)}, ${summary}`;
  return disks.length > 0 ? `${head} (${disks.join('; ')})` : head;
}

const STEP_LABELS: Record<SwitchoverStepName, string> = {
  SourcePaused: 'paused',
  SourceQuiescing: 'quiescing',
  FramesSteered: 'frames steered',
  ContinueSent: 'continue sent',
  SourceContinued: 'continued',
  TargetLoaded: 'loaded',
  SourceCompleted: 'completed',
  OutcomeSent: 'outcome sent',
  OutcomeReceived: 'outcome seen',
  OwnershipRecorded: 'recorded',
  ResumeRequested: 'resume asked',
  TargetResumed: 'running',
  FirstFrame: 'first frame',
  ResumeAcknowledged: 'acked',
};

/** Wraps `items` joined by ', ' into lines of at most `width` characters, the first after `head`. */
function wrap(head: string, items: string[], indent: string, width = 100): string[] {
  const lines: string[] = [];
  let line = head;
  for (const [i, item] of items.entries()) {
    const piece = i < items.length - 1 ? `${item},` : item;
    if (line.length + 1 + piece.length > width && line.trim() !== '') {
      lines.push(line);
      line = indent + piece;
    } else {
      line = line === '' ? piece : `${line} ${piece}`;
    }
  }
  if (line.trim() !== '') lines.push(line);
  return lines;
}

/**
 * The switchover timeline in a few lines: each step's milliseconds after the source's pause, on the operator's
 * clock, the largest clock error bound, the first frame's resolution and why a step is missing. `indent` starts
 * the continuation lines.
 */
export function renderSwitchover(
  switchover: MigrationSwitchover | undefined,
  head: string,
  indent: string,
): string[] {
  if (!switchover || switchover.steps.length === 0) return [];
  const bound = Math.max(0, ...switchover.clocks.map((clock) => clock.errorBoundMs));
  const items = switchover.steps
    .filter((step) => step.step !== 'SourcePaused')
    .map((step) => {
      const resolution =
        step.step === 'FirstFrame' && switchover.firstFrameResolutionMs !== undefined
          ? ` (-${switchover.firstFrameResolutionMs.toFixed(1)})`
          : '';
      return `${STEP_LABELS[step.step]} ${step.offsetMs.toFixed(1)}${resolution}`;
    });
  const lines = wrap(`${head}ms after the pause (clocks ±${bound.toFixed(1)}):`, items, indent);
  if (switchover.note) lines.push(`${indent}${switchover.note}`);
  return lines;
}

export interface Outcome {
  succeeded: boolean;
  lines: string[];
}

/** The closing report of a finished Migration. */
export function renderOutcome(migration: Migration): Outcome {
  const status = migration.status ?? {};
  const total = totalTimeMs(migration);
  const route = `${migration.spec.vmName}: ${status.sourceNode ?? '?'} → ${status.targetNode ?? migration.spec.targetNode ?? '?'}`;
  if (status.phase === 'Succeeded') {
    const lines = ['Guest migrated successfully.', `  ${route} (migration ${migrationRef(migration)})`];
    const { qemuMs, guestGapMs } = status.downtime ?? {};
    if (qemuMs !== undefined || guestGapMs !== undefined) {
      const parts: string[] = [];
      if (qemuMs !== undefined) parts.push(`${formatDuration(qemuMs)} (QEMU)`);
      if (guestGapMs !== undefined) parts.push(`longest guest gap ${formatDuration(guestGapMs)}`);
      lines.push(`  Downtime: ${parts.join(', ')}`);
    }
    if (status.downtime?.postCopyMs !== undefined)
      lines.push(
        `  Post-copy: ran on the target for ${formatDuration(status.downtime.postCopyMs)} before the last page`,
      );
    lines.push(...renderSwitchover(status.switchover, '  Switchover: ', '    '));
    const quiesce = renderQuiesce(status.quiesce);
    if (quiesce !== undefined) lines.push(`  Quiesce: ${quiesce}`);
    if (total !== undefined) lines.push(`  Total time: ${formatDuration(total)}`);
    if (status.progress?.transferredBytes !== undefined) {
      lines.push(`  Transferred: ${formatBytes(status.progress.transferredBytes)}`);
    }
    return { succeeded: true, lines };
  }
  const verb = status.phase === 'Aborted' ? 'aborted' : 'failed';
  const reason = status.failureReason ? ` (${status.failureReason})` : '';
  const lines = [`Migration ${verb}${reason}: ${status.message ?? 'no message from the operator'}`];
  const lastRunning = phaseSpans(status)
    .filter((s) => !isTerminalMigrationPhase(s.phase))
    .at(-1);
  const during = lastRunning ? ` during ${lastRunning.phase}` : '';
  const after = total !== undefined ? ` after ${formatDuration(total)}` : '';
  lines.push(`  ${route} (migration ${migrationRef(migration)}) stopped${during}${after}.`);
  const quiesce = renderQuiesce(status.quiesce);
  if (quiesce !== undefined) lines.push(`  Quiesce: ${quiesce}`);
  return { succeeded: false, lines };
}
