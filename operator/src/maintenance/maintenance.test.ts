import type { HypervisorNode, VirtualMachine } from '../../../crds/index.js';
import { CORDON_SYNCED_ANNOTATION, planCordonMirror } from './cordon-mirror.js';
import { decideEviction } from './eviction.js';
import { GUARD_VM_UID_LABEL, guardPod, guardedNode, planGuards, type Pod } from './guard-pods.js';

function vm(
  name: string,
  at: string | undefined,
  phase: NonNullable<VirtualMachine['status']>['phase'] = 'Running',
  evictionStrategy: 'LiveMigrate' | 'None' = 'LiveMigrate',
  uid = `uid-${name}`,
): VirtualMachine {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default', uid },
    spec: { running: true, cpu: { cores: 1 }, memory: '256Mi', evictionStrategy } as VirtualMachine['spec'],
    status: { phase, node: at },
  };
}

function hvn(name: string, spec: HypervisorNode['spec'] = {}, synced?: boolean): HypervisorNode {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'HypervisorNode',
    metadata: {
      name,
      uid: `uid-${name}`,
      ...(synced === undefined ? {} : { annotations: { [CORDON_SYNCED_ANNOTATION]: String(synced) } }),
    },
    spec,
  };
}

function guard(name: string, node: string, uid = 'uid-vm1', created = '2026-12-06T20:00:00Z'): Pod {
  return {
    metadata: { name, creationTimestamp: created, labels: { [GUARD_VM_UID_LABEL]: uid } },
    spec: { nodeName: node },
  };
}

describe('guard pods', () => {
  it('guards a VM whose guest runs (or may run) on the node its record names', () => {
    expect(guardedNode(vm('vm1', 'node-a'))).toBe('node-a');
    expect(guardedNode(vm('vm1', 'node-a', 'Migrating'))).toBe('node-a');
    expect(guardedNode(vm('vm1', 'node-a', 'Stopped'))).toBeUndefined();
    expect(guardedNode(vm('vm1', undefined, 'Scheduling'))).toBeUndefined();
    expect(guardedNode(undefined)).toBeUndefined();
  });

  it('is a pod drain evicts: a controller that is not a DaemonSet, bound to the node, gone at once', () => {
    const pod = guardPod(vm('vm1', 'node-a'), hvn('node-a'), { namespace: 'tern-system', image: 'pause' });
    expect(pod.metadata).toMatchObject({ generateName: 'vm-vm1-', namespace: 'tern-system' });
    expect(pod.metadata.ownerReferences).toEqual([
      expect.objectContaining({
        kind: 'HypervisorNode',
        name: 'node-a',
        uid: 'uid-node-a',
        controller: true,
      }),
    ]);
    expect(pod.spec).toMatchObject({ nodeName: 'node-a', terminationGracePeriodSeconds: 0 });
  });

  it('creates the missing guard, moves it after a migration, removes it when the VM stops or goes', () => {
    expect(planGuards(vm('vm1', 'node-a'), [])).toEqual({ createOn: 'node-a', remove: [] });
    const onA = guard('vm-vm1-x', 'node-a');
    expect(planGuards(vm('vm1', 'node-a'), [onA])).toEqual({ createOn: undefined, remove: [] });
    expect(planGuards(vm('vm1', 'node-b'), [onA])).toEqual({ createOn: 'node-b', remove: [onA] });
    expect(planGuards(vm('vm1', 'node-a', 'Stopped'), [onA])).toEqual({ createOn: undefined, remove: [onA] });
    expect(planGuards(undefined, [onA])).toEqual({ createOn: undefined, remove: [onA] });
    // A VM created again under the same name is another VM: its predecessor's guard goes.
    expect(planGuards(vm('vm1', 'node-a', 'Running', 'LiveMigrate', 'uid-new'), [onA])).toEqual({
      createOn: 'node-a',
      remove: [onA],
    });
  });

  it('keeps the oldest of two guards on the same node', () => {
    const older = guard('vm-vm1-b', 'node-a', 'uid-vm1', '2026-12-06T20:00:00Z');
    const newer = guard('vm-vm1-a', 'node-a', 'uid-vm1', '2026-12-06T20:00:05Z');
    expect(planGuards(vm('vm1', 'node-a'), [newer, older])).toEqual({ createOn: undefined, remove: [newer] });
  });
});

describe('decideEviction', () => {
  const onA = guard('vm-vm1-x', 'node-a');

  it('lets a stale guard go: the VM left the node, stopped, or is gone', () => {
    const node = hvn('node-a', { drain: true });
    expect(decideEviction({ pod: onA, vm: vm('vm1', 'node-b'), node, cordoned: true })).toEqual({
      allowed: true,
    });
    expect(decideEviction({ pod: onA, vm: vm('vm1', 'node-a', 'Stopped'), node, cordoned: true })).toEqual({
      allowed: true,
    });
    expect(decideEviction({ pod: onA, vm: undefined, node, cordoned: true })).toEqual({ allowed: true });
  });

  it('answers 429 while a LiveMigrate VM is still there, and the first answer of a drain drains the node', () => {
    const verdict = decideEviction({
      pod: onA,
      vm: vm('vm1', 'node-a'),
      node: hvn('node-a'),
      cordoned: true,
    });
    expect(verdict).toEqual({
      allowed: false,
      code: 429,
      drainNode: true,
      message: 'VirtualMachine default/vm1 is being live-migrated off node node-a',
    });
    const again = decideEviction({
      pod: onA,
      vm: vm('vm1', 'node-a', 'Migrating'),
      node: hvn('node-a', { drain: true, unschedulable: true }),
      cordoned: true,
    });
    expect(again).toMatchObject({ allowed: false, code: 429, drainNode: false });
  });

  it('waits (429) for a VM that is stopping, whatever its eviction strategy', () => {
    const stopping = vm('vm1', 'node-a', 'Stopping', 'None');
    expect(decideEviction({ pod: onA, vm: stopping, node: hvn('node-a'), cordoned: true })).toEqual({
      allowed: false,
      code: 429,
      drainNode: true,
      message: 'VirtualMachine default/vm1 is stopping on node node-a',
    });
  });

  it('does not start a move for an eviction outside a drain (the Node is not cordoned)', () => {
    const verdict = decideEviction({
      pod: onA,
      vm: vm('vm1', 'node-a'),
      node: hvn('node-a'),
      cordoned: false,
    });
    expect(verdict).toMatchObject({ allowed: false, code: 429, drainNode: false });
    expect(!verdict.allowed && verdict.message).toMatch(/only when the node is drained/);
  });

  it('stops the drain (403) naming a VM that will not move', () => {
    const pinned = vm('vm1', 'node-a', 'Running', 'None');
    const verdict = decideEviction({ pod: onA, vm: pinned, node: hvn('node-a'), cordoned: true });
    expect(verdict).toMatchObject({ allowed: false, code: 403, drainNode: true });
    expect(!verdict.allowed && verdict.message).toMatch(
      /^VirtualMachine default\/vm1 has evictionStrategy None and stays on node node-a/,
    );
    const blocked = hvn('node-a', { drain: true });
    blocked.status = {
      evacuation: { phase: 'Blocked', total: 1, remaining: 1, message: 'failed 3 times: default/vm1' },
    };
    expect(decideEviction({ pod: onA, vm: vm('vm1', 'node-a'), node: blocked, cordoned: true })).toEqual({
      allowed: false,
      code: 403,
      drainNode: false,
      message: 'VirtualMachine default/vm1 cannot leave node node-a: failed 3 times: default/vm1',
    });
  });
});

describe('planCordonMirror', () => {
  const annotations = (value: boolean) => ({ annotations: { [CORDON_SYNCED_ANNOTATION]: String(value) } });

  it('does nothing when both sides agree with the record', () => {
    expect(planCordonMirror({ node: hvn('n', {}, false), kubeCordoned: false })).toEqual({});
    expect(planCordonMirror({ node: hvn('n', { drain: true }, true), kubeCordoned: true })).toEqual({});
  });

  it('follows the Node: a cordon, and an uncordon that also ends the drain', () => {
    expect(planCordonMirror({ node: hvn('n', {}, false), kubeCordoned: true })).toEqual({
      hypervisorNodePatch: { metadata: annotations(true), spec: { unschedulable: true } },
    });
    expect(
      planCordonMirror({ node: hvn('n', { unschedulable: true, drain: true }, true), kubeCordoned: false }),
    ).toEqual({
      hypervisorNodePatch: { metadata: annotations(false), spec: { unschedulable: null, drain: null } },
    });
  });

  it('follows the HypervisorNode: kubectl tern drain and uncordon', () => {
    expect(planCordonMirror({ node: hvn('n', { drain: true }, false), kubeCordoned: false })).toEqual({
      kubeCordon: true,
      hypervisorNodePatch: { metadata: annotations(true) },
    });
    expect(planCordonMirror({ node: hvn('n', {}, true), kubeCordoned: true })).toEqual({
      kubeCordon: false,
      hypervisorNodePatch: { metadata: annotations(false) },
    });
  });

  it('on first sight, records agreement and resolves a difference towards cordoned', () => {
    expect(planCordonMirror({ node: hvn('n'), kubeCordoned: false })).toEqual({
      hypervisorNodePatch: { metadata: annotations(false) },
    });
    expect(planCordonMirror({ node: hvn('n', { unschedulable: true }), kubeCordoned: false })).toEqual({
      kubeCordon: true,
      hypervisorNodePatch: { metadata: annotations(true) },
    });
    expect(planCordonMirror({ node: hvn('n'), kubeCordoned: true })).toEqual({
      hypervisorNodePatch: { metadata: annotations(true), spec: { unschedulable: true } },
    });
  });
});
