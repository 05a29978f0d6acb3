// The phases a migration moves through (docs/architecture.md "A migration") and their timing record.
// The engine's terminal phases describe the QEMU migration; the Migration object's Succeeded comes later, after
// the caller's hand-over.

/** The engine's phase of one QEMU migration (not the Migration object's phase in crds/, nor the wire enum). */
export type EnginePhase =
  'Initializing' | 'Copying' | 'Quiescing' | 'Freezing' | 'PostCopy' | 'Completed' | 'Failed' | 'Aborted';

export const TERMINAL_PHASES: readonly EnginePhase[] = ['Completed', 'Failed', 'Aborted'];

export interface PhaseRecord {
  phase: EnginePhase;
  /** Date.now() when the phase began. */
  startedAtMs: number;
  /** Set when the next phase began; a terminal phase has 0. */
  durationMs?: number;
}

export interface PhaseChange {
  from: EnginePhase | undefined;
  to: EnginePhase;
  atMs: number;
  /** Why, in words (e.g. the QEMU status that caused it, or a cancel reason). */
  reason: string;
}

/** Records each phase's start and duration; enter() returns the change to announce, or undefined if unchanged. */
export class PhaseClock {
  readonly records: PhaseRecord[] = [];

  get current(): EnginePhase | undefined {
    return this.records.at(-1)?.phase;
  }

  enter(phase: EnginePhase, reason: string, atMs = Date.now()): PhaseChange | undefined {
    const last = this.records.at(-1);
    if (last?.phase === phase) return undefined;
    if (last !== undefined) last.durationMs = atMs - last.startedAtMs;
    const record: PhaseRecord = { phase, startedAtMs: atMs };
    if (TERMINAL_PHASES.includes(phase)) record.durationMs = 0;
    this.records.push(record);
    return { from: last?.phase, to: phase, atMs, reason };
  }

  snapshot(): PhaseRecord[] {
    return this.records.map((r) => ({ ...r }));
  }
}
