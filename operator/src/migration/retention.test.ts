import type { Migration, MigrationPhase } from '../../../crds/index.js';
import { migrationsToPrune } from './retention.js';

function migration(
  name: string,
  vmName: string,
  phase: MigrationPhase | undefined,
  finished?: string,
): Migration {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: { name, namespace: 'default', creationTimestamp: '2026-11-29T00:00:00Z' },
    spec: { vmName },
    status: {
      phase,
      phaseTimings: finished && phase ? [{ phase, startedAt: finished }] : [],
    },
  };
}

const names = (list: Migration[]) => list.map((m) => m.metadata.name).sort();

describe('migrationsToPrune', () => {
  it('keeps the newest N finished Migrations of each VM and selects the older ones', () => {
    const list = [
      migration('a1', 'a', 'Succeeded', '2026-11-29T00:01:00Z'),
      migration('a2', 'a', 'Failed', '2026-11-29T00:02:00Z'),
      migration('a3', 'a', 'Aborted', '2026-11-29T00:03:00Z'),
      migration('a4', 'a', 'Succeeded', '2026-11-29T00:04:00Z'),
      migration('b1', 'b', 'Succeeded', '2026-11-29T00:00:30Z'),
      migration('b2', 'b', 'Succeeded', '2026-11-29T00:05:00Z'),
    ];
    expect(names(migrationsToPrune(list, 2))).toEqual(['a1', 'a2']);
    expect(names(migrationsToPrune(list, 1))).toEqual(['a1', 'a2', 'a3', 'b1']);
    expect(migrationsToPrune(list, 5)).toEqual([]);
  });

  it('never selects an unfinished Migration, however old', () => {
    const list = [
      migration('run', 'a', 'Copying', '2026-11-29T00:00:01Z'),
      migration('wait', 'a', undefined),
      migration('new', 'a', 'Succeeded', '2026-11-29T00:09:00Z'),
      migration('old', 'a', 'Succeeded', '2026-11-29T00:01:00Z'),
    ];
    expect(names(migrationsToPrune(list, 1))).toEqual(['old']);
  });

  it('treats the same VM name in two namespaces as two VMs', () => {
    const other = { ...migration('x', 'a', 'Succeeded', '2026-11-29T00:00:00Z') };
    other.metadata = { ...other.metadata, namespace: 'team' };
    const list = [other, migration('y', 'a', 'Succeeded', '2026-11-29T00:01:00Z')];
    expect(migrationsToPrune(list, 1)).toEqual([]);
  });

  it('never selects nor counts a Migration a GitOps tool tracks, or one annotated tern.dev/keep', () => {
    const tracked = (name: string, finished: string, metadata: Partial<Migration['metadata']>) => {
      const m = migration(name, 'a', 'Succeeded', finished);
      m.metadata = { ...m.metadata, ...metadata };
      return m;
    };
    const list = [
      tracked('argo', '2026-11-29T00:01:00Z', { labels: { 'argocd.argoproj.io/instance': 'vms' } }),
      tracked('argo-annotation', '2026-11-29T00:01:10Z', {
        annotations: { 'argocd.argoproj.io/tracking-id': 'vms:tern.dev/Migration:default/argo-annotation' },
      }),
      tracked('flux', '2026-11-29T00:01:20Z', {
        labels: {
          'kustomize.toolkit.fluxcd.io/name': 'vms',
          'kustomize.toolkit.fluxcd.io/namespace': 'flux-system',
        },
      }),
      tracked('flux-helm', '2026-11-29T00:01:30Z', { labels: { 'helm.toolkit.fluxcd.io/name': 'vms' } }),
      tracked('keep', '2026-11-29T00:01:40Z', { annotations: { 'tern.dev/keep': 'true' } }),
      tracked('keep-false', '2026-11-29T00:01:50Z', { annotations: { 'tern.dev/keep': 'false' } }),
      migration('older', 'a', 'Failed', '2026-11-29T00:02:00Z'),
      migration('newest', 'a', 'Failed', '2026-11-29T00:03:00Z'),
    ];
    expect(names(migrationsToPrune(list, 1))).toEqual(['keep-false', 'older']);
  });
});
