import type { HypervisorNode, VirtualMachine } from '../../../crds/index.js';
import { placeVirtualMachine, usageByNode } from './placement.js';

function node(
  name: string,
  options: {
    ready?: boolean;
    memory?: string;
    cpu?: number;
    labels?: Record<string, string>;
    unschedulable?: boolean;
    drain?: boolean;
    accelerator?: 'kvm' | 'tcg';
  } = {},
): HypervisorNode {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'HypervisorNode',
    metadata: { name, labels: options.labels },
    spec: { unschedulable: options.unschedulable, drain: options.drain },
    status: {
      endpoint: `127.0.0.1:7443`,
      accelerator: options.accelerator ?? 'tcg',
      allocatable: { cpu: options.cpu ?? 8, memory: options.memory ?? '8Gi' },
      conditions: [
        {
          type: 'Ready',
          status: options.ready === false ? 'False' : 'True',
          reason: 'DaemonReady',
          message: '',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    },
  };
}

function vm(
  name: string,
  options: {
    uid?: string;
    memory?: string;
    cores?: number;
    node?: string;
    phase?: VirtualMachine['status'] extends infer S ? (S extends { phase?: infer P } ? P : never) : never;
    placement?: VirtualMachine['spec']['placement'];
  } = {},
): VirtualMachine {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default', uid: options.uid ?? `uid-${name}` },
    spec: {
      running: true,
      cpu: { cores: options.cores ?? 1 },
      memory: options.memory ?? '1Gi',
      boot: { kernel: { path: '/images/vmlinux' } },
      placement: options.placement,
    },
    status: options.node ? { node: options.node, phase: options.phase ?? 'Running' } : undefined,
  };
}

describe('placeVirtualMachine', () => {
  const cases: {
    title: string;
    vm: VirtualMachine;
    nodes: HypervisorNode[];
    vms?: VirtualMachine[];
    expected: { node: string } | { reason: string; message?: string };
  }[] = [
    {
      title: 'no node registered',
      vm: vm('a'),
      nodes: [],
      expected: { reason: 'NoReadyNodes', message: 'no HypervisorNode is registered' },
    },
    {
      title: 'no node ready',
      vm: vm('a'),
      nodes: [node('n1', { ready: false }), node('n2', { ready: false })],
      expected: { reason: 'NoReadyNodes', message: '0/2 nodes are available: 2 not ready' },
    },
    {
      title: 'a node without an endpoint is not ready',
      vm: vm('a'),
      nodes: [{ ...node('n1'), status: { ...node('n1').status, endpoint: undefined } }],
      expected: { reason: 'NoReadyNodes' },
    },
    {
      title: 'equal nodes: the smallest name wins',
      vm: vm('a'),
      nodes: [node('n2'), node('n1'), node('n3')],
      expected: { node: 'n1' },
    },
    {
      title: 'most free memory wins, counting what placed VMs request',
      vm: vm('a'),
      nodes: [node('n1'), node('n2')],
      vms: [vm('b', { node: 'n1', memory: '2Gi' })],
      expected: { node: 'n2' },
    },
    {
      title: 'stopped and failed VMs hold nothing',
      vm: vm('a', { memory: '8Gi' }),
      nodes: [node('n1')],
      vms: [
        vm('b', { node: 'n1', memory: '4Gi', phase: 'Stopped' }),
        vm('c', { node: 'n1', phase: 'Failed' }),
      ],
      expected: { node: 'n1' },
    },
    {
      title: 'the VM itself is not counted against a node',
      vm: vm('a', { memory: '8Gi', node: 'n1', phase: 'Unknown' }),
      nodes: [node('n1')],
      vms: [vm('a', { memory: '8Gi', node: 'n1' })],
      expected: { node: 'n1' },
    },
    {
      title: 'memory exhausted',
      vm: vm('a', { memory: '4Gi' }),
      nodes: [node('n1', { memory: '6Gi' }), node('n2', { memory: '2Gi' })],
      vms: [vm('b', { node: 'n1', memory: '3Gi' })],
      expected: {
        reason: 'InsufficientCapacity',
        message: '0/2 nodes are available: 2 without 1 CPUs and 4096 MiB free',
      },
    },
    {
      title: 'CPUs exhausted',
      vm: vm('a', { cores: 2 }),
      nodes: [node('n1', { cpu: 2 })],
      vms: [vm('b', { node: 'n1', cores: 1 })],
      expected: { reason: 'InsufficientCapacity' },
    },
    {
      title: 'an exact fit is a fit',
      vm: vm('a', { memory: '4Gi', cores: 4 }),
      nodes: [node('n1', { memory: '8Gi', cpu: 8 })],
      vms: [vm('b', { node: 'n1', memory: '4Gi', cores: 4 })],
      expected: { node: 'n1' },
    },
    {
      title: 'node selector on labels',
      vm: vm('a', { placement: { nodeSelector: { zone: 'b' } } }),
      nodes: [node('n1', { labels: { zone: 'a' } }), node('n2', { labels: { zone: 'b' } })],
      expected: { node: 'n2' },
    },
    {
      title: 'node selector matching nothing',
      vm: vm('a', { placement: { nodeSelector: { zone: 'c' } } }),
      nodes: [node('n1', { labels: { zone: 'a' } }), node('n2', { ready: false, labels: { zone: 'c' } })],
      expected: {
        reason: 'NodeSelectorMismatch',
        message: '0/2 nodes are available: 1 not ready, 1 not matching the node selector',
      },
    },
    {
      title: 'accelerator compatibility through tern.dev/accelerator, from status',
      vm: vm('a', { placement: { nodeSelector: { 'tern.dev/accelerator': 'kvm' } } }),
      nodes: [node('n1', { accelerator: 'tcg' }), node('n2', { accelerator: 'kvm' })],
      expected: { node: 'n2' },
    },
    {
      title: 'a label cannot claim an accelerator the node does not have',
      vm: vm('a', { placement: { nodeSelector: { 'tern.dev/accelerator': 'kvm' } } }),
      nodes: [node('n1', { accelerator: 'tcg', labels: { 'tern.dev/accelerator': 'kvm' } })],
      expected: { reason: 'NodeSelectorMismatch' },
    },
    {
      title: 'cordoned and draining nodes are skipped',
      vm: vm('a'),
      nodes: [node('n1', { unschedulable: true }), node('n2', { drain: true }), node('n3')],
      expected: { node: 'n3' },
    },
    {
      title: 'only cordoned nodes',
      vm: vm('a'),
      nodes: [node('n1', { unschedulable: true })],
      expected: { reason: 'Unschedulable', message: '0/1 nodes are available: 1 cordoned' },
    },
    {
      title: 'nodeName pins the VM even when another node has more room',
      vm: vm('a', { placement: { nodeName: 'n2' } }),
      nodes: [node('n1', { memory: '64Gi' }), node('n2')],
      expected: { node: 'n2' },
    },
    {
      title: 'nodeName of a missing node',
      vm: vm('a', { placement: { nodeName: 'n9' } }),
      nodes: [node('n1')],
      expected: { reason: 'NodeNotFound' },
    },
    {
      title: 'nodeName of a node that is not ready',
      vm: vm('a', { placement: { nodeName: 'n1' } }),
      nodes: [node('n1', { ready: false }), node('n2')],
      expected: { reason: 'NoReadyNodes' },
    },
    {
      title: 'a node running another VM of the same name (another namespace) is skipped',
      vm: vm('a'),
      nodes: [node('n1'), node('n2')],
      vms: [
        { ...vm('a', { uid: 'other', node: 'n1' }), metadata: { name: 'a', namespace: 'x', uid: 'other' } },
      ],
      expected: { node: 'n2' },
    },
  ];

  it.each(cases)('$title', ({ vm: subject, nodes, vms, expected }) => {
    expect(placeVirtualMachine(subject, nodes, vms ?? [])).toMatchObject(expected);
  });

  it('is deterministic whatever the order of its inputs', () => {
    const nodes = [node('n3'), node('n1', { memory: '4Gi' }), node('n2')];
    const vms = [vm('b', { node: 'n2', memory: '1Gi' })];
    const results = new Set(
      [nodes, [...nodes].reverse(), [nodes[1]!, nodes[2]!, nodes[0]!]].map(
        (order) => placeVirtualMachine(vm('a'), order, vms).node,
      ),
    );
    expect([...results]).toEqual(['n3']);
  });
});

describe('usageByNode', () => {
  it('sums CPUs and memory of the VMs holding resources per node', () => {
    const usage = usageByNode([
      vm('a', { node: 'n1', cores: 2, memory: '512Mi' }),
      vm('b', { node: 'n1', cores: 1, memory: '1Gi', phase: 'Starting' }),
      vm('c', { node: 'n2', phase: 'Stopped' }),
      vm('d'),
    ]);
    expect(usage.get('n1')).toEqual({
      cpu: 3,
      memoryBytes: 1536 * 1024 * 1024,
    });
    expect(usage.has('n2')).toBe(false);
  });

  it('adds what the migrations heading to a node reserve there, except for the VM being placed', () => {
    const moving = vm('m', { node: 'n1', cores: 2, memory: '2Gi', phase: 'Migrating' });
    const usage = usageByNode([moving, vm('b', { node: 'n2' })], undefined, [{ node: 'n2', vm: moving }]);
    expect(usage.get('n1')).toEqual({ cpu: 2, memoryBytes: 2 * 1024 ** 3 });
    expect(usage.get('n2')).toEqual({ cpu: 3, memoryBytes: 3 * 1024 ** 3 });
    expect(usageByNode([moving], moving.metadata.uid, [{ node: 'n2', vm: moving }]).size).toBe(0);
  });
});

describe('placeVirtualMachine with migrations heading to a node', () => {
  const moving = vm('m', { node: 'n1', memory: '3Gi', phase: 'Migrating' });
  const incoming = [{ node: 'n2', vm: moving }];

  it('counts their memory: the node with the most memory left after them wins', () => {
    const nodes = [
      node('n1', { memory: '4Gi' }),
      node('n2', { memory: '6Gi' }),
      node('n3', { memory: '4Gi' }),
    ];
    expect(placeVirtualMachine(vm('a'), nodes, [moving]).node).toBe('n2');
    expect(placeVirtualMachine(vm('a'), nodes, [moving], incoming).node).toBe('n3');
  });

  it('refuses a node whose room they took (InsufficientCapacity), never a VM of the same name', () => {
    const nodes = [node('n1', { memory: '3Gi' }), node('n2', { memory: '4Gi' })];
    expect(placeVirtualMachine(vm('a', { memory: '2Gi' }), nodes, [moving], incoming)).toEqual({
      reason: 'InsufficientCapacity',
      message: '0/2 nodes are available: 2 without 1 CPUs and 2048 MiB free',
    });
    const sameName = { ...vm('m', { uid: 'other' }), metadata: { name: 'm', namespace: 'x', uid: 'other' } };
    // Guests are keyed by UID on a node: the VM of the same name in another namespace may join it.
    expect(placeVirtualMachine(sameName, [node('n1'), node('n2')], [moving], incoming).node).toBeDefined();
  });
});
