// Retention of finished Migrations: the newest `limit` finished ones of each VM stay as records, older ones are
// deleted. Unfinished Migrations are never selected.
import type { Migration } from '../../../crds/index.js';
import { isTerminalMigrationPhase } from '../../../crds/index.js';

/** When the Migration finished: the start of its terminal phase, else its creation. */
function finishedAt(migration: Migration): number {
  const phase = migration.status?.phase;
  const terminal = migration.status?.phaseTimings?.find((timing) => timing.phase === phase);
  return Date.parse(terminal?.startedAt ?? migration.metadata.creationTimestamp ?? '') || 0;
}

/** The finished Migrations beyond the newest `limit` of each VM (namespace + spec.vmName), oldest last. */
export function migrationsToPrune(migrations: readonly Migration[], limit: number): Migration[] {
  const byVm = new Map<string, Migration[]>();
  for (const migration of migrations) {
    if (!isTerminalMigrationPhase(migration.status?.phase) || migration.metadata.deletionTimestamp) continue;
    const key = `${migration.metadata.namespace}/${migration.spec.vmName}`;
    byVm.set(key, [...(byVm.get(key) ?? []), migration]);
  }
  const prune: Migration[] = [];
  for (const finished of byVm.values()) {
    finished.sort(
      (a, b) => finishedAt(b) - finishedAt(a) || (b.metadata.name ?? '').localeCompare(a.metadata.name ?? ''),
    );
    prune.push(...finished.slice(limit));
  }
  return prune;
}
