import { Registry } from 'prom-client';
import type { HypervisorNode, VirtualMachine } from '../../../crds/index.js';
import { registerHypervisorNodeMetrics } from './metrics.js';

const node = (name: string, status: HypervisorNode['status']): HypervisorNode => ({
  apiVersion: 'tern.dev/v1alpha1',
  kind: 'HypervisorNode',
  metadata: { name },
  status,
});

const vm = (name: string, nodeName: string, phase: string, cores: number, memory: string): VirtualMachine =>
  ({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default', uid: name },
    spec: { cpu: { cores }, memory },
    status: { node: nodeName, phase },
  }) as VirtualMachine;

const condition = (type: string, status: 'True' | 'False') => ({
  type,
  status,
  reason: 'R',
  message: '',
  lastTransitionTime: '2026-12-01T00:00:00Z',
});

test('reports each node’s conditions (Ready always), capacity, allocatable and what its VMs request', async () => {
  const registry = new Registry();
  const nodes = [
    node('node-a', {
      conditions: [condition('Ready', 'True'), condition('Fenced', 'False')],
      capacity: { cpu: 8, memory: '16Gi' },
      allocatable: { cpu: 7, memory: '15Gi' },
    }),
    node('node-b', {}),
  ];
  const vms = [
    vm('one', 'node-a', 'Running', 2, '1Gi'),
    vm('two', 'node-a', 'Migrating', 1, '512Mi'),
    vm('stopped', 'node-a', 'Stopped', 4, '4Gi'),
  ];
  registerHypervisorNodeMetrics(
    registry,
    () => nodes,
    () => vms,
  );
  const text = await registry.metrics();
  const lines = text.split('\n').filter((line) => !line.startsWith('#'));
  expect(lines).toEqual(
    expect.arrayContaining([
      'tern_hypervisornode_status_condition{node="node-a",condition="Ready",status="True"} 1',
      'tern_hypervisornode_status_condition{node="node-a",condition="Ready",status="False"} 0',
      'tern_hypervisornode_status_condition{node="node-a",condition="Fenced",status="False"} 1',
      // A node that reported nothing yet: its readiness is Unknown.
      'tern_hypervisornode_status_condition{node="node-b",condition="Ready",status="Unknown"} 1',
      'tern_hypervisornode_status_condition{node="node-b",condition="Ready",status="True"} 0',
      'tern_hypervisornode_capacity_cpus{node="node-a"} 8',
      `tern_hypervisornode_capacity_memory_bytes{node="node-a"} ${16 * 2 ** 30}`,
      'tern_hypervisornode_allocatable_cpus{node="node-a"} 7',
      `tern_hypervisornode_allocatable_memory_bytes{node="node-a"} ${15 * 2 ** 30}`,
      // A stopped VM holds nothing.
      'tern_hypervisornode_requested_cpus{node="node-a"} 3',
      `tern_hypervisornode_requested_memory_bytes{node="node-a"} ${1.5 * 2 ** 30}`,
      'tern_hypervisornode_requested_cpus{node="node-b"} 0',
    ]),
  );
  expect(lines.filter((line) => line.startsWith('tern_hypervisornode_capacity_cpus'))).toHaveLength(1);

  // Series of a node that is gone go with it.
  nodes.pop();
  expect(await registry.metrics()).not.toContain('node="node-b"');
});
