// Prometheus metrics of the HypervisorNodes as this operator replica's informers see them, read at scrape time:
// each node's conditions (in kube-state-metrics' shape: one series per status, 1 on the current one) and its CPU
// and memory (what the daemon reports as capacity and allocatable, and what the VMs placed there request). They
// come from the operator rather than the daemons because a node whose daemon is gone has no daemon to report it.
import { Gauge, type Registry } from 'prom-client';
import type { HypervisorNode, VirtualMachine } from '../../../crds/index.js';
import { HYPERVISOR_NODE_CONDITIONS, parseByteQuantity } from '../../../crds/index.js';
import { usageByNode } from '../placement/placement.js';

const STATUSES = ['True', 'False', 'Unknown'] as const;

export function registerHypervisorNodeMetrics(
  registry: Registry,
  nodes: () => readonly HypervisorNode[],
  vms: () => readonly VirtualMachine[],
): void {
  const registers = [registry];
  new Gauge({
    name: 'tern_hypervisornode_status_condition',
    help:
      'Conditions of each HypervisorNode: 1 on the series of its current status (True, False, Unknown), 0 on the ' +
      'others. Ready is always reported (Unknown while the node has none).',
    labelNames: ['node', 'condition', 'status'],
    registers,
    collect() {
      this.reset();
      for (const node of nodes()) {
        const conditions = node.status?.conditions ?? [];
        const types = new Set([HYPERVISOR_NODE_CONDITIONS.Ready, ...conditions.map((c) => c.type)]);
        for (const type of types) {
          const current = conditions.find((c) => c.type === type)?.status ?? 'Unknown';
          for (const status of STATUSES)
            this.set({ node: node.metadata.name!, condition: type, status }, status === current ? 1 : 0);
        }
      }
    },
  });

  /** A gauge with one series per node, from `value` (no series for a node where it is undefined). */
  const perNode = (
    name: string,
    help: string,
    value: (node: HypervisorNode, requested: { cpu: number; memoryBytes: number }) => number | undefined,
  ): void =>
    void new Gauge({
      name,
      help,
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        const usage = usageByNode(vms());
        for (const node of nodes()) {
          const requested = usage.get(node.metadata.name!) ?? { cpu: 0, memoryBytes: 0 };
          const v = value(node, requested);
          if (v !== undefined) this.set({ node: node.metadata.name! }, v);
        }
      },
    });
  const bytes = (quantity: string | number | undefined) =>
    quantity === undefined ? undefined : parseByteQuantity(quantity);
  perNode(
    'tern_hypervisornode_capacity_cpus',
    "The host's CPUs, as its daemon reports them",
    (node) => node.status?.capacity?.cpu,
  );
  perNode(
    'tern_hypervisornode_capacity_memory_bytes',
    "The host's memory, as its daemon reports it",
    (node) => bytes(node.status?.capacity?.memory),
  );
  perNode(
    'tern_hypervisornode_allocatable_cpus',
    'CPUs guests may use on the node (capacity minus the reserved CPUs)',
    (node) => node.status?.allocatable?.cpu,
  );
  perNode(
    'tern_hypervisornode_allocatable_memory_bytes',
    'Memory guests may use on the node (capacity minus the reserved memory)',
    (node) => bytes(node.status?.allocatable?.memory),
  );
  perNode(
    'tern_hypervisornode_requested_cpus',
    'CPUs the VirtualMachines placed on the node request (what placement counts as used)',
    (_, requested) => requested.cpu,
  );
  perNode(
    'tern_hypervisornode_requested_memory_bytes',
    'Memory the VirtualMachines placed on the node request (what placement counts as used)',
    (_, requested) => requested.memoryBytes,
  );
}
