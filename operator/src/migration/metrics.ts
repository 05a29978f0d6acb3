// Prometheus metrics of migrations on the operator's registry: how many Migrations are in each phase (read from
// the informer at scrape time), how many finished by result, and the phase-duration and downtime histograms
// (observed once, when this replica writes the terminal phase).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Migration } from '../../../crds/index.js';
import { MIGRATION_FAILURE_REASONS, MIGRATION_PHASES, SWITCHOVER_STEPS } from '../../../crds/index.js';

const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Bucket bounds of tern_migration_downtime_seconds (the chart's downtime alert threshold must be one of them). */
export const DOWNTIME_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Bucket bounds of tern_migration_switchover_step_seconds: from a millisecond to the longest freezes. */
export const SWITCHOVER_STEP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class MigrationMetrics {
  private readonly finished: Counter<'result' | 'reason'>;
  private readonly phaseSeconds: Histogram<'phase'>;
  private readonly downtimeSeconds: Histogram<'source'>;
  private readonly switchoverStepSeconds: Histogram<'step'>;

  constructor(registry: Registry, migrations: () => readonly Migration[]) {
    const registers = [registry];
    new Gauge({
      name: 'tern_migrations',
      help: 'Migrations by phase (no phase yet counts as Pending).',
      labelNames: ['phase'],
      registers,
      collect() {
        const counts = new Map<string, number>(MIGRATION_PHASES.map((phase) => [phase, 0]));
        for (const migration of migrations()) {
          const phase = migration.status?.phase ?? 'Pending';
          counts.set(phase, (counts.get(phase) ?? 0) + 1);
        }
        for (const [phase, count] of counts) this.set({ phase }, count);
      },
    });
    this.finished = new Counter({
      name: 'tern_migrations_finished_total',
      help: 'Migrations that reached a terminal phase, by result (Succeeded, Failed, Aborted) and failure reason.',
      labelNames: ['result', 'reason'],
      registers,
    });
    this.phaseSeconds = new Histogram({
      name: 'tern_migration_phase_duration_seconds',
      help: "Duration of each phase of a finished Migration (from its status' phaseTimings).",
      labelNames: ['phase'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.downtimeSeconds = new Histogram({
      name: 'tern_migration_downtime_seconds',
      help: 'Downtime of a succeeded migration; source qemu: reported by the source QEMU.',
      labelNames: ['source'],
      buckets: DOWNTIME_BUCKETS,
      registers,
    });
    this.switchoverStepSeconds = new Histogram({
      name: 'tern_migration_switchover_step_seconds',
      help:
        "Seconds from the source's pause to each step of a succeeded migration's switchover " +
        "(status.switchover, on the operator's clock).",
      labelNames: ['step'],
      buckets: SWITCHOVER_STEP_BUCKETS,
      registers,
    });
    // Every series an alert or the dashboard counts increases of exists from the first scrape at 0: Prometheus sees
    // no increase in a series whose first sample is already 1, so the first failure of a kind would otherwise never
    // alert, and the first migration's phases never show.
    this.finished.labels({ result: 'Succeeded', reason: '' }).inc(0);
    this.finished.labels({ result: 'Aborted', reason: 'Cancelled' }).inc(0);
    for (const reason of MIGRATION_FAILURE_REASONS)
      if (reason !== 'Cancelled') this.finished.labels({ result: 'Failed', reason }).inc(0);
    for (const source of ['qemu', 'guest']) this.downtimeSeconds.zero({ source });
    for (const phase of MIGRATION_PHASES) this.phaseSeconds.zero({ phase });
    for (const step of SWITCHOVER_STEPS) this.switchoverStepSeconds.zero({ step });
  }

  /** Call once per Migration, with the status carrying its terminal phase. */
  observeFinished(migration: Migration): void {
    const status = migration.status ?? {};
    this.finished.inc({ result: status.phase ?? 'Unknown', reason: status.failureReason ?? '' });
    for (const timing of status.phaseTimings ?? []) {
      if (timing.durationMs !== undefined)
        this.phaseSeconds.observe({ phase: timing.phase }, timing.durationMs / 1000);
    }
    if (status.downtime?.qemuMs !== undefined)
      this.downtimeSeconds.observe({ source: 'qemu' }, status.downtime.qemuMs / 1000);
    if (status.downtime?.guestGapMs !== undefined)
      this.downtimeSeconds.observe({ source: 'guest' }, status.downtime.guestGapMs / 1000);
    // A step the clocks' error puts a hair before the pause counts as at the pause.
    for (const { step, offsetMs } of status.switchover?.steps ?? [])
      this.switchoverStepSeconds.observe({ step }, Math.max(0, offsetMs) / 1000);
  }
}
