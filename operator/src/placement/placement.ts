// Placement: which HypervisorNode a VirtualMachine without a node should start on. A pure function of the VM, the
// nodes and the VMs already placed, so that it is table-tested and deterministic: among the nodes that pass every
// filter it picks the one with the most free memory, then the lexically smallest name.
import type { HypervisorNode, VirtualMachine } from '../../../crds/index.js';
import { HYPERVISOR_NODE_CONDITIONS, parseByteQuantity } from '../../../crds/index.js';

/** Node label that always reflects status.accelerator, so a nodeSelector can ask for kvm or tcg. */
export const ACCELERATOR_LABEL = 'tern.dev/accelerator';

export const PLACEMENT_REASONS = [
  'NodeNotFound',
  'NoReadyNodes',
  'NodeSelectorMismatch',
  'Unschedulable',
  'InsufficientCapacity',
] as const;
export type PlacementReason = (typeof PLACEMENT_REASONS)[number];

export type PlacementResult =
  { node: string; message: string } | { node?: undefined; reason: PlacementReason; message: string };

export interface NodeUsage {
  cpu: number;
  memoryBytes: number;
}

/** Whether the node may receive guests: Ready=True and an endpoint to reach its daemon. */
export function isNodeReady(node: HypervisorNode): boolean {
  const ready = node.status?.conditions?.find((c) => c.type === HYPERVISOR_NODE_CONDITIONS.Ready);
  return ready?.status === 'True' && Boolean(node.status?.endpoint);
}

export function isNodeSchedulable(node: HypervisorNode): boolean {
  return !node.spec?.unschedulable && !node.spec?.drain;
}

/** A VM holds resources on status.node unless its guest is down for good (Stopped, Failed). */
export function vmHoldsResources(vm: VirtualMachine): boolean {
  return vm.status?.node !== undefined && vm.status.phase !== 'Stopped' && vm.status.phase !== 'Failed';
}

/**
 * A VM on its way to `node` (a migration heading there): until the VM's record names that node, the incoming
 * guest already holds its CPUs, its memory and its guest name there.
 */
export interface IncomingReservation {
  node: string;
  vm: VirtualMachine;
}

/**
 * What the VMs placed on each node and the migrations heading to it request; `exceptUid` leaves out the VM being
 * placed.
 */
export function usageByNode(
  vms: readonly VirtualMachine[],
  exceptUid?: string,
  incoming: readonly IncomingReservation[] = [],
): Map<string, NodeUsage> {
  const usage = new Map<string, NodeUsage>();
  const hold = (node: string, vm: VirtualMachine) => {
    // Guests are keyed by the VM's UID on a node (daemon/guest-key.ts): names never conflict there.
    const entry = usage.get(node) ?? { cpu: 0, memoryBytes: 0 };
    entry.cpu += vm.spec.cpu.cores;
    entry.memoryBytes += parseByteQuantity(vm.spec.memory);
    usage.set(node, entry);
  };
  for (const vm of vms) {
    if (vmHoldsResources(vm) && vm.metadata.uid !== exceptUid) hold(vm.status!.node!, vm);
  }
  for (const reservation of incoming) {
    if (reservation.vm.metadata.uid !== exceptUid) hold(reservation.node, reservation.vm);
  }
  return usage;
}

function nodeLabels(node: HypervisorNode): Record<string, string> {
  const labels = { ...node.metadata.labels };
  if (node.status?.accelerator) labels[ACCELERATOR_LABEL] = node.status.accelerator;
  return labels;
}

function matchesSelector(node: HypervisorNode, selector: Record<string, string> | undefined): boolean {
  const labels = nodeLabels(node);
  return Object.entries(selector ?? {}).every(([key, value]) => labels[key] === value);
}

function freeResources(
  node: HypervisorNode,
  used: NodeUsage | undefined,
): { cpu: number; memoryBytes: number } {
  const allocatable = node.status?.allocatable;
  return {
    cpu: (allocatable?.cpu ?? 0) - (used?.cpu ?? 0),
    memoryBytes: (allocatable ? parseByteQuantity(allocatable.memory) : 0) - (used?.memoryBytes ?? 0),
  };
}

const MiB = 1024 * 1024;

/**
 * Chooses a node for `vm`. `vms` are all VirtualMachines (any namespace) as last seen, including placements not
 * yet visible in a cache; the VM's own entry is ignored. `incoming` are the migrations heading to a node. On
 * failure the reason names the filter that removed the last candidates, and the message counts what every filter
 * removed.
 */
export function placeVirtualMachine(
  vm: VirtualMachine,
  nodes: readonly HypervisorNode[],
  vms: readonly VirtualMachine[],
  incoming: readonly IncomingReservation[] = [],
): PlacementResult {
  const wanted = vm.spec.placement?.nodeName;
  let candidates = wanted ? nodes.filter((n) => n.metadata.name === wanted) : [...nodes];
  if (candidates.length === 0) {
    return wanted
      ? {
          reason: 'NodeNotFound',
          message: `HypervisorNode ${wanted} (spec.placement.nodeName) does not exist`,
        }
      : { reason: 'NoReadyNodes', message: 'no HypervisorNode is registered' };
  }
  const total = candidates.length;
  const removed: string[] = [];
  const usage = usageByNode(vms, vm.metadata.uid, incoming);
  const memoryBytes = parseByteQuantity(vm.spec.memory);
  const filters: [PlacementReason, string, (node: HypervisorNode) => boolean][] = [
    ['NoReadyNodes', 'not ready', isNodeReady],
    [
      'NodeSelectorMismatch',
      'not matching the node selector',
      (n) => matchesSelector(n, vm.spec.placement?.nodeSelector),
    ],
    ['Unschedulable', 'cordoned', isNodeSchedulable],
    [
      'InsufficientCapacity',
      `without ${vm.spec.cpu.cores} CPUs and ${Math.ceil(memoryBytes / MiB)} MiB free`,
      (n) => {
        const free = freeResources(n, usage.get(n.metadata.name!));
        return free.cpu >= vm.spec.cpu.cores && free.memoryBytes >= memoryBytes;
      },
    ],
  ];
  for (const [reason, description, keep] of filters) {
    const kept = candidates.filter(keep);
    if (kept.length < candidates.length) removed.push(`${candidates.length - kept.length} ${description}`);
    candidates = kept;
    if (candidates.length === 0) {
      return { reason, message: `0/${total} nodes are available: ${removed.join(', ')}` };
    }
  }
  const ranked = candidates
    .map((n) => ({ name: n.metadata.name!, free: freeResources(n, usage.get(n.metadata.name!)).memoryBytes }))
    .sort((a, b) => b.free - a.free || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const chosen = ranked[0]!;
  return {
    node: chosen.name,
    message: `placed on ${chosen.name} (${Math.floor((chosen.free - memoryBytes) / MiB)} MiB left there)`,
  };
}
