// Evacuation of a drained HypervisorNode, without I/O: which VMs get a Migration now, which cannot leave, and the
// node's status.evacuation. evacuation.ts does the reads and writes around it.
//
// A VM with evictionStrategy None is left running and reported as blocking (phase Blocked once nothing else is
// moving). KubeVirt shuts such a VMI down on drain; Tern does not stop a guest behind its owner's back — the owner
// stops it (running: false) or moves it with a Migration, and the evacuation then completes.
import type { HypervisorNode, HypervisorNodeStatus, Migration, VirtualMachine } from '../../../crds/index.js';
import { EVACUATION_NODE_LABEL, isTerminalMigrationPhase } from '../../../crds/index.js';
import { metaTime } from '../../../kube/objects.js';

export type EvacuationStatus = NonNullable<HypervisorNodeStatus['evacuation']>;

/** A VM whose evacuation failed this often during one drain is given up on (reported, not retried). */
export const EVACUATION_ATTEMPTS = 3;

export interface EvacuationInput {
  node: HypervisorNode;
  /** Every VirtualMachine of the cluster. */
  vms: readonly VirtualMachine[];
  /** Every Migration of the cluster, read after this node's previous writes. */
  migrations: readonly Migration[];
  now: Date;
}

export interface EvacuationPlan {
  /** VMs that get an evacuation Migration now. */
  migrate: VirtualMachine[];
  /** The node's next status.evacuation; undefined removes it. */
  status: EvacuationStatus | undefined;
}

const vmKey = (namespace: string | undefined, name: string | undefined) => `${namespace}/${name}`;

/** Whether the VM counts as on the node: its ownership record names it. */
export function isOnNode(vm: VirtualMachine, node: string): boolean {
  return vm.status?.node === node;
}

export function isEvacuationOf(migration: Migration, node: string): boolean {
  return migration.metadata.labels?.[EVACUATION_NODE_LABEL] === node;
}

/** The Migration the evacuation creates for `vm` (the name comes from generateName). */
export function evacuationMigration(vm: VirtualMachine, node: string): Migration {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: {
      generateName: `${vm.metadata.name}-evac-`,
      namespace: vm.metadata.namespace,
      labels: { [EVACUATION_NODE_LABEL]: node },
    },
    spec: { vmName: vm.metadata.name! },
  };
}

export function planEvacuation({ node, vms, migrations, now }: EvacuationInput): EvacuationPlan {
  const name = node.metadata.name!;
  const previous = node.status?.evacuation;
  // Un-drained: nothing new is started (Migrations already created run on) and the record goes, so that the
  // next drain counts afresh.
  if (!node.spec?.drain) return { migrate: [], status: undefined };
  const startedAt = previous?.startedAt ?? metaTime(now);
  const here = vms.filter((vm) => isOnNode(vm, name));
  const unfinished = new Set<string>();
  const failures = new Map<string, number>();
  for (const migration of migrations) {
    const key = vmKey(migration.metadata.namespace, migration.spec.vmName);
    if (!isTerminalMigrationPhase(migration.status?.phase)) unfinished.add(key);
    else if (
      isEvacuationOf(migration, name) &&
      migration.status?.phase !== 'Succeeded' &&
      Date.parse(migration.metadata.creationTimestamp ?? '') >= Date.parse(startedAt)
    )
      failures.set(key, (failures.get(key) ?? 0) + 1);
  }

  const migrate: VirtualMachine[] = [];
  const blocked: string[] = [];
  const failed: string[] = [];
  let migrating = 0;
  for (const vm of here) {
    const key = vmKey(vm.metadata.namespace, vm.metadata.name);
    if (unfinished.has(key) || vm.status?.activeMigration) migrating++;
    else if ((vm.spec.evictionStrategy ?? 'LiveMigrate') !== 'LiveMigrate') blocked.push(key);
    else if ((failures.get(key) ?? 0) >= EVACUATION_ATTEMPTS) failed.push(key);
    else migrate.push(vm);
  }
  const remaining = here.length;
  const moving = migrating + migrate.length;
  const phase = remaining === 0 ? 'Evacuated' : moving > 0 ? 'Evacuating' : 'Blocked';
  const notes = [
    ...(blocked.length ? [`evictionStrategy None: ${blocked.join(', ')}`] : []),
    ...(failed.length ? [`failed ${EVACUATION_ATTEMPTS} times: ${failed.join(', ')}`] : []),
  ];
  const status: EvacuationStatus = {
    phase,
    startedAt,
    total: Math.max(previous?.total ?? 0, remaining),
    remaining,
    migrating: moving,
    failed: failed.length,
  };
  if (notes.length) status.message = notes.join('; ');
  return { migrate, status };
}

const FIELDS = ['phase', 'startedAt', 'total', 'remaining', 'migrating', 'failed', 'message'] as const;

/** Whether writing `b` over `a` would change nothing. */
export function sameEvacuation(a: EvacuationStatus | undefined, b: EvacuationStatus | undefined): boolean {
  if (!a || !b) return a === b;
  return FIELDS.every((field) => a[field] === b[field]);
}
