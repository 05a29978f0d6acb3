// Shows a Migration as it advances, one snapshot at a time. On a terminal one live line is redrawn in place
// (phase, progress bar, rates); elsewhere (pipes, CI logs) plain lines are printed when the phase or the
// pre-copy round changes, and at most once a second while the copy moves, so that a log stays short.
//
// Lines come in phase order: a phase's "completed" line is never followed by a running line of that phase (the
// operator closes Freezing when the daemon reports its end, before the hand-over moves the phase on).
import { isTerminalMigrationPhase } from '../crds/index.js';
import type { Migration } from '../crds/index.js';
import type { Outcome } from './render.js';
import { phaseSpans, renderLiveLine, renderOutcome, renderPhaseCompleted } from './render.js';

export interface ReporterOutput {
  write(text: string): void;
  /** Whether the output is a terminal that understands carriage return and "erase line". */
  isTTY: boolean;
  /** Terminal width; the live line is cut to fit so that it never wraps (a wrapped line cannot be redrawn). */
  columns?: number;
}

const ERASE_LINE = '\r\x1b[2K';
/** Plain output: the shortest gap between two progress lines of the same phase and round. */
export const PLAIN_PROGRESS_INTERVAL_MS = 1000;

/** Bytes sent over time, from successive snapshots whose transferredBytes moved (the reader's clock). */
class RateMeter {
  private last?: { bytes: number; at: number };
  rate?: number;

  sample(bytes: number | undefined, at: number): void {
    if (bytes === undefined) return;
    const last = this.last;
    if (last && bytes < last.bytes) this.rate = undefined; // a new attempt started over
    if (last && bytes === last.bytes) return; // no new progress written yet: keep the last figure
    if (last && bytes > last.bytes && at > last.at)
      this.rate = ((bytes - last.bytes) * 1000) / (at - last.at);
    this.last = { bytes, at };
  }
}

export class MigrationReporter {
  private readonly out: ReporterOutput;
  private readonly completed = new Set<string>();
  private liveShown = false;
  private lastPlainKey = '';
  private lastPlainAt = -Infinity;
  private lastPlainBytes: number | undefined;
  private readonly meter = new RateMeter();
  private readonly now: () => number;

  constructor(out: ReporterOutput, now: () => number = Date.now) {
    this.out = out;
    this.now = now;
  }

  /** Renders one snapshot; returns the outcome once the Migration has reached a terminal phase. */
  update(migration: Migration): Outcome | undefined {
    const status = migration.status;
    for (const span of phaseSpans(status)) {
      if (span.durationMs === undefined || isTerminalMigrationPhase(span.phase)) continue;
      if (this.completed.has(span.phase)) continue;
      this.completed.add(span.phase);
      this.line(renderPhaseCompleted(span));
    }
    if (isTerminalMigrationPhase(status?.phase)) {
      const outcome = renderOutcome(migration);
      for (const line of outcome.lines) this.line(line);
      return outcome;
    }
    // The running phase is over already (its "completed" line is out): nothing live until the next phase.
    if (!this.completed.has(status?.phase ?? 'Pending')) this.live(migration);
    return undefined;
  }

  /** Ends the live line so that a message printed next starts on its own line. */
  close(): void {
    if (this.liveShown) this.out.write(ERASE_LINE);
    this.liveShown = false;
  }

  private line(text: string): void {
    this.close();
    this.out.write(`${text}\n`);
  }

  private live(migration: Migration): void {
    const status = migration.status;
    const now = this.now();
    const bytes = status?.progress?.transferredBytes;
    this.meter.sample(bytes, now);
    if (this.out.isTTY) {
      // A pty whose size was never set reports 0 columns.
      const width = Math.max(20, (this.out.columns || 80) - 1);
      const line = renderLiveLine(status, true, this.meter.rate);
      this.out.write(ERASE_LINE + (line.length > width ? `${line.slice(0, width - 1)}…` : line));
      this.liveShown = true;
      return;
    }
    const key = `${status?.phase ?? 'Pending'}/${status?.progress?.round ?? ''}`;
    const moved = bytes !== this.lastPlainBytes && now - this.lastPlainAt >= PLAIN_PROGRESS_INTERVAL_MS;
    if (key === this.lastPlainKey && !moved) return;
    this.lastPlainKey = key;
    this.lastPlainAt = now;
    this.lastPlainBytes = bytes;
    this.line(renderLiveLine(status, false, this.meter.rate));
  }
}
