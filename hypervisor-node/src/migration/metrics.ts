// Prometheus metrics of the migrations this daemon runs as source (the engine's outcomes and live progress) and
// receives as target, on the daemon's registry (tern_node_migration_*).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { TERMINAL_PHASES } from './engine/phases.js';
import type { ProgressSample } from './engine/progress.js';
import { throughputBytesPerSec } from './engine/progress.js';
import type { SourceOutcome } from './engine/source.js';

const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const DOWNTIME_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** An outgoing migration in flight, for the live gauges (labelled by guest: one migration per guest at a time). */
export interface ActiveOutgoing {
  guest: string;
  latest: ProgressSample | undefined;
}

export type IncomingResult = 'Loaded' | 'Failed' | 'Aborted';

export class NodeMigrationMetrics {
  private readonly outgoing: Counter<'result' | 'cause'>;
  private readonly incoming: Counter<'result'>;
  private readonly transferred: Counter;
  private readonly downtime: Histogram;
  private readonly phaseSeconds: Histogram<'phase'>;

  constructor(registry: Registry, active: () => ActiveOutgoing[]) {
    const registers = [registry];
    const liveGauge = (name: string, help: string, value: (progress: ProgressSample) => number): void =>
      void new Gauge({
        name,
        help,
        labelNames: ['guest'],
        registers,
        collect() {
          this.reset();
          for (const { guest, latest } of active()) if (latest) this.set({ guest }, value(latest));
        },
      });
    liveGauge(
      'tern_node_migration_dirty_rate_bytes_per_second',
      'Guest dirty rate of each outgoing migration in flight, at its last sample',
      (progress) => progress.dirtyRateBytesPerSec,
    );
    liveGauge(
      'tern_node_migration_throughput_bytes_per_second',
      "QEMU's send rate of each outgoing migration in flight, at its last sample",
      throughputBytesPerSec,
    );
    liveGauge(
      'tern_node_migration_remaining_bytes',
      'Dirty memory still to send, for each outgoing migration in flight',
      (progress) => progress.remainingBytes,
    );
    this.outgoing = new Counter({
      name: 'tern_node_migrations_outgoing_total',
      help: 'Outgoing migrations that reached an outcome, by result (Completed, Failed, Aborted) and cause',
      labelNames: ['result', 'cause'],
      registers,
    });
    this.incoming = new Counter({
      name: 'tern_node_migrations_incoming_total',
      help: 'Incoming migrations by how the target ended: Loaded (ready for the hand-over), Failed, Aborted',
      labelNames: ['result'],
      registers,
    });
    this.transferred = new Counter({
      name: 'tern_node_migration_transferred_bytes_total',
      help: 'Bytes QEMU sent for outgoing migrations (counted at each outcome)',
      registers,
    });
    this.downtime = new Histogram({
      name: 'tern_node_migration_downtime_seconds',
      help: 'Downtime the source QEMU reported for completed outgoing migrations',
      buckets: DOWNTIME_BUCKETS,
      registers,
    });
    this.phaseSeconds = new Histogram({
      name: 'tern_node_migration_phase_duration_seconds',
      help: 'Duration of each phase of outgoing migrations',
      labelNames: ['phase'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    // The outcomes a dashboard plots increases of exist at 0 from the first scrape: Prometheus sees no increase in
    // a series whose first sample is already 1, so the node's first migration would not show.
    this.outgoing.labels({ result: 'Completed', cause: '' }).inc(0);
    for (const result of ['Loaded', 'Failed', 'Aborted'] satisfies IncomingResult[])
      this.incoming.labels({ result }).inc(0);
  }

  observeOutgoing(outcome: SourceOutcome): void {
    this.outgoing.inc({ result: outcome.result, cause: outcome.cause ?? '' });
    this.transferred.inc(outcome.transferredBytes ?? 0);
    if (outcome.result === 'Completed' && outcome.downtimeMs !== undefined) {
      this.downtime.observe(outcome.downtimeMs / 1000);
    }
    for (const record of outcome.phases) {
      if (record.durationMs === undefined || TERMINAL_PHASES.includes(record.phase)) continue;
      this.phaseSeconds.observe({ phase: record.phase }, record.durationMs / 1000);
    }
  }

  observeIncoming(result: IncomingResult): void {
    this.incoming.inc({ result });
  }
}
