// Shows a Migration as it advances, one snapshot at a time. On a terminal one live line is redrawn in place
// (phase, progress bar, rates); elsewhere (pipes, CI logs) plain lines are printed only when the phase or the
// pre-copy round changes, so that a log stays short.
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

export class MigrationReporter {
  private readonly out: ReporterOutput;
  private readonly completed = new Set<string>();
  private liveShown = false;
  private lastPlainKey = '';

  constructor(out: ReporterOutput) {
    this.out = out;
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
    this.live(migration);
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
    if (this.out.isTTY) {
      // A pty whose size was never set reports 0 columns.
      const width = Math.max(20, (this.out.columns || 80) - 1);
      const line = renderLiveLine(status, true);
      this.out.write(ERASE_LINE + (line.length > width ? `${line.slice(0, width - 1)}…` : line));
      this.liveShown = true;
      return;
    }
    const key = `${status?.phase ?? 'Pending'}/${status?.progress?.round ?? ''}`;
    if (key === this.lastPlainKey) return;
    this.lastPlainKey = key;
    this.line(renderLiveLine(status, false));
  }
}
