// Retention of finished Migrations: the newest `limit` finished ones of each VM stay as records, older ones are
// deleted. Unfinished Migrations are never selected, nor are Migrations a GitOps tool tracks (docs/gitops.md): a
// tool that finds its Migration gone creates it again, and the new object would move the VM again. Those stay until
// they leave git (the tool prunes them) or someone deletes them, and do not count towards the limit.
import type { Migration } from '../../../crds/index.js';
import { isTerminalMigrationPhase } from '../../../crds/index.js';

/** Labels Argo CD (label tracking, its default key) and Flux (kustomize- and helm-controller) put on what they apply. */
export const GITOPS_TRACKING_LABELS = [
  'argocd.argoproj.io/instance',
  'kustomize.toolkit.fluxcd.io/name',
  'helm.toolkit.fluxcd.io/name',
] as const;
/** Argo CD's annotation tracking (its default since 3.0). */
export const GITOPS_TRACKING_ANNOTATIONS = ['argocd.argoproj.io/tracking-id'] as const;
/** Set to "true" on a Migration that retention must keep (any other tool that applies Migrations from a source). */
export const KEEP_ANNOTATION = 'tern.dev/keep';

/** Whether retention leaves this Migration alone: a GitOps tool tracks it, or it asks to be kept. */
export function isKeptFromRetention(migration: Migration): boolean {
  const { labels = {}, annotations = {} } = migration.metadata;
  return (
    GITOPS_TRACKING_LABELS.some((key) => key in labels) ||
    GITOPS_TRACKING_ANNOTATIONS.some((key) => key in annotations) ||
    annotations[KEEP_ANNOTATION] === 'true'
  );
}

/** When the Migration finished: the start of its terminal phase, else its creation. */
function finishedAt(migration: Migration): number {
  const phase = migration.status?.phase;
  const terminal = migration.status?.phaseTimings?.find((timing) => timing.phase === phase);
  return Date.parse(terminal?.startedAt ?? migration.metadata.creationTimestamp ?? '') || 0;
}

/**
 * The finished Migrations beyond the newest `limit` of each VM (namespace + spec.vmName), oldest last; kept ones
 * (isKeptFromRetention) are neither selected nor counted.
 */
export function migrationsToPrune(migrations: readonly Migration[], limit: number): Migration[] {
  const byVm = new Map<string, Migration[]>();
  for (const migration of migrations) {
    if (!isTerminalMigrationPhase(migration.status?.phase) || migration.metadata.deletionTimestamp) continue;
    if (isKeptFromRetention(migration)) continue;
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
