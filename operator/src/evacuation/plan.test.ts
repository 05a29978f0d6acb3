import type { HypervisorNode, Migration, MigrationPhase, VirtualMachine } from '../../../crds/index.js';
import { EVACUATION_NODE_LABEL } from '../../../crds/index.js';
import { EVACUATION_ATTEMPTS, evacuationMigration, planEvacuation, sameEvacuation } from './plan.js';

const NOW = new Date('2026-11-29T01:00:00Z');

function node(
  drain: boolean,
  evacuation?: NonNullable<HypervisorNode['status']>['evacuation'],
): HypervisorNode {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'HypervisorNode',
    metadata: { name: 'node-a' },
    spec: { drain, unschedulable: drain },
    status: evacuation ? { evacuation } : {},
  };
}

function vm(
  name: string,
  at: string,
  extra: Partial<VirtualMachine['spec']> = {},
  active?: string,
): VirtualMachine {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: { running: true, cpu: { cores: 1 }, memory: '256Mi', ...extra } as VirtualMachine['spec'],
    status: { phase: active ? 'Migrating' : 'Running', node: at, activeMigration: active },
  };
}

function migration(name: string, vmName: string, phase?: MigrationPhase, evacuating?: string): Migration {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: {
      name,
      namespace: 'default',
      creationTimestamp: '2026-11-29T01:00:05Z',
      labels: evacuating ? { [EVACUATION_NODE_LABEL]: evacuating } : {},
    },
    spec: { vmName },
    status: phase ? { phase } : {},
  };
}

describe('planEvacuation', () => {
  it('migrates every LiveMigrate VM on a drained node and starts counting', () => {
    const vms = [
      vm('a', 'node-a'),
      vm('b', 'node-a', { evictionStrategy: 'LiveMigrate' }),
      vm('c', 'node-b'),
    ];
    const plan = planEvacuation({ node: node(true), vms, migrations: [], now: NOW });
    expect(plan.migrate.map((v) => v.metadata.name)).toEqual(['a', 'b']);
    expect(plan.status).toEqual({
      phase: 'Evacuating',
      startedAt: '2026-11-29T01:00:00Z',
      total: 2,
      remaining: 2,
      migrating: 2,
      failed: 0,
    });
  });

  it('never creates a second Migration for a VM with an unfinished one (evacuation or not, even Pending)', () => {
    const vms = [vm('a', 'node-a'), vm('b', 'node-a'), vm('c', 'node-a', {}, 'manual')];
    const migrations = [
      migration('a-evac-x', 'a', 'Pending', 'node-a'),
      migration('b-user', 'b'),
      migration('old', 'c', 'Succeeded'),
    ];
    const plan = planEvacuation({ node: node(true), vms, migrations, now: NOW });
    expect(plan.migrate).toEqual([]);
    expect(plan.status).toMatchObject({ phase: 'Evacuating', remaining: 3, migrating: 3 });
  });

  it('keeps the total and start of an ongoing drain and completes when no VM is left', () => {
    const ongoing = {
      phase: 'Evacuating' as const,
      startedAt: '2026-11-29T00:59:00Z',
      total: 2,
      remaining: 1,
    };
    const left = planEvacuation({
      node: node(true, ongoing),
      vms: [vm('a', 'node-a', {}, 'a-evac-1')],
      migrations: [migration('a-evac-1', 'a', 'Copying', 'node-a')],
      now: NOW,
    });
    expect(left.status).toMatchObject({
      phase: 'Evacuating',
      total: 2,
      remaining: 1,
      startedAt: ongoing.startedAt,
    });
    const done = planEvacuation({
      node: node(true, ongoing),
      vms: [vm('a', 'node-b')],
      migrations: [],
      now: NOW,
    });
    expect(done.status).toMatchObject({ phase: 'Evacuated', total: 2, remaining: 0, migrating: 0 });
  });

  it('reports evictionStrategy None as Blocked once nothing else moves, and leaves such a VM running', () => {
    const vms = [vm('keep', 'node-a', { evictionStrategy: 'None' }), vm('go', 'node-a', {}, 'go-evac-1')];
    const moving = planEvacuation({ node: node(true), vms, migrations: [], now: NOW });
    expect(moving.status).toMatchObject({ phase: 'Evacuating', remaining: 2, migrating: 1 });
    expect(moving.status?.message).toBe('evictionStrategy None: default/keep');
    const stuck = planEvacuation({ node: node(true), vms: [vms[0]!], migrations: [], now: NOW });
    expect(stuck.migrate).toEqual([]);
    expect(stuck.status).toMatchObject({ phase: 'Blocked', remaining: 1, migrating: 0, failed: 0 });
  });

  it(`retries a failed evacuation until ${EVACUATION_ATTEMPTS} failures of this drain, then reports it failed`, () => {
    const drain = node(true, {
      phase: 'Evacuating',
      startedAt: '2026-11-29T01:00:00Z',
      total: 1,
      remaining: 1,
    });
    const failures = (n: number) =>
      Array.from({ length: n }, (_, i) =>
        migration(`a-evac-${i}`, 'a', i % 2 ? 'Aborted' : 'Failed', 'node-a'),
      );
    const retry = planEvacuation({
      node: drain,
      vms: [vm('a', 'node-a')],
      migrations: failures(2),
      now: NOW,
    });
    expect(retry.migrate).toHaveLength(1);
    const given = planEvacuation({
      node: drain,
      vms: [vm('a', 'node-a')],
      migrations: failures(3),
      now: NOW,
    });
    expect(given.migrate).toEqual([]);
    expect(given.status).toMatchObject({ phase: 'Blocked', failed: 1, message: 'failed 3 times: default/a' });
    // Failures of an earlier drain (before startedAt) do not count.
    const earlier = node(true, { ...drain.status!.evacuation!, startedAt: '2026-11-29T01:00:10Z' });
    expect(
      planEvacuation({ node: earlier, vms: [vm('a', 'node-a')], migrations: failures(3), now: NOW }).migrate,
    ).toHaveLength(1);
  });

  it('starts nothing and drops the record when not drained, so the next drain counts afresh', () => {
    const vms = [vm('a', 'node-a')];
    for (const phase of ['Evacuating', 'Evacuated', 'Blocked'] as const) {
      const record = { phase, total: 1, remaining: phase === 'Evacuated' ? 0 : 1 };
      expect(planEvacuation({ node: node(false, record), vms, migrations: [], now: NOW })).toEqual({
        migrate: [],
        status: undefined,
      });
    }
  });

  it('keeps an Evacuated record (start, total) while the node stays drained', () => {
    const done = { phase: 'Evacuated' as const, startedAt: '2026-11-29T00:50:00Z', total: 2, remaining: 0 };
    const plan = planEvacuation({
      node: node(true, done),
      vms: [vm('a', 'node-b')],
      migrations: [],
      now: NOW,
    });
    expect(plan.status).toMatchObject({
      phase: 'Evacuated',
      startedAt: done.startedAt,
      total: 2,
      remaining: 0,
    });
  });
});

it('builds an evacuation Migration with generateName <vm>-evac- and the node label, no targetNode', () => {
  expect(evacuationMigration(vm('web', 'node-a'), 'node-a')).toEqual({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: {
      generateName: 'web-evac-',
      namespace: 'default',
      labels: { [EVACUATION_NODE_LABEL]: 'node-a' },
    },
    spec: { vmName: 'web' },
  });
});

it('compares evacuation statuses field by field, whatever the key order', () => {
  const a = { phase: 'Evacuating' as const, total: 2, remaining: 1 };
  expect(sameEvacuation(a, { remaining: 1, total: 2, phase: 'Evacuating' })).toBe(true);
  expect(sameEvacuation(a, { ...a, remaining: 0 })).toBe(false);
  expect(sameEvacuation(undefined, a)).toBe(false);
  expect(sameEvacuation(undefined, undefined)).toBe(true);
});
