// Checks of a source's Quiescing report (MigrationOutcome.quiesce) shared by the migration integration tests.
import type { MigrationOutcome__Output } from '../../proto/index.js';

/**
 * The outcome's phases: Quiescing ran, Freezing began only after it ended, and the quiesce report's duration fits
 * inside the Quiescing phase.
 */
export function expectQuiescingBeforeFreezing(outcome: MigrationOutcome__Output): void {
  const phases = outcome.phases.map((p) => p.phase);
  const quiescing = outcome.phases.find((p) => p.phase === 'MIGRATION_PHASE_QUIESCING');
  const freezing = outcome.phases.find((p) => p.phase === 'MIGRATION_PHASE_FREEZING');
  expect(quiescing).toBeDefined();
  expect(freezing).toBeDefined();
  expect(phases.indexOf('MIGRATION_PHASE_FREEZING')).toBe(phases.indexOf('MIGRATION_PHASE_QUIESCING') + 1);
  expect(quiescing!.startedAtUnixMs + quiescing!.durationMs).toBeLessThanOrEqual(freezing!.startedAtUnixMs);
  expect(outcome.quiesce).toBeDefined();
  expect(outcome.quiesce!.durationMs).toBeLessThanOrEqual(quiescing!.durationMs);
}
