// Evacuation of drained HypervisorNodes: one Migration (no targetNode, so placement picks one and the Migration
// reconciler applies the concurrency limits) per VM with evictionStrategy LiveMigrate that has no unfinished
// Migration, and the progress in the node's status.evacuation with Events on start and finish.
//
// Idempotence: a node's reconciles never overlap. Each plans from the watch caches (the node's VMs through an index
// by node, their Migrations through an index by VM), with the Migrations this process created that the cache does
// not show yet, so a VM never gets two evacuation Migrations from here. The VM cache may lag the Migration cache:
// a VM whose Migration just finished may still look as if it were here. A Migration writes its VM's
// status.lastMigration before its own terminal phase, so a VM whose cached copy does not name its last finished
// Migration is read from the API before it gets another one. The status write is a compare-and-swap on the node's
// resourceVersion; after a conflict the node is read from the API.
import type { HypervisorNode, Migration, VirtualMachine } from '../../../crds/index.js';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.js';
import type { Informer } from '../runtime/informer.js';
import { retryOnConflict } from '../runtime/conflict.js';
import type { KubeClient } from '../../../kube/client.js';
import { isNotFound } from '../../../kube/errors.js';
import type { EventRecorder } from '../../../kube/events.js';
import { evacuationMigration, planEvacuation, sameEvacuation, type EvacuationStatus } from './plan.js';
import {
  EVACUATION_NODE_LABEL,
  HypervisorNodes,
  isTerminalMigrationPhase,
  Migrations,
  VirtualMachines,
} from '../../../crds/index.js';
import { conditionsEqual } from '../../../kube/conditions.js';
import { objectKey } from '../../../kube/objects.js';
import { CacheIndex } from '../runtime/cache-index.js';
import { hypervisorNodeVerdict, withKstatus } from '../kstatus/conditions.js';

export interface EvacuationReconcilerOptions {
  client: KubeClient;
  nodes: Informer<HypervisorNode>;
  vms: Informer<VirtualMachine>;
  migrations: Informer<Migration>;
  events: EventRecorder;
  /** How often an ongoing evacuation looks again (VM and Migration changes also wake it). */
  recheckMs?: number;
}

const STATUS_RETRIES = 5;
/** How long a Migration created here counts even though the Migration cache has not shown it yet. */
const ASSUMED_CREATE_MS = 60_000;

const vmKeyOf = (namespace: string | undefined, name: string | undefined) => `${namespace}/${name}`;

/** Whether a finished Migration of the VM is not the one the VM's cached copy names as its last. */
export function lagsBehind(vm: VirtualMachine, migrations: readonly Migration[]): boolean {
  const last = vm.status?.lastMigration?.name;
  return migrations.some(
    (m) =>
      m.metadata.namespace === vm.metadata.namespace &&
      m.spec.vmName === vm.metadata.name &&
      isTerminalMigrationPhase(m.status?.phase) &&
      m.metadata.name !== last,
  );
}

export class EvacuationReconciler {
  private readonly vmsByNode: CacheIndex<VirtualMachine>;
  private readonly migrationsByVm: CacheIndex<Migration>;
  /** Migrations created here, by key, until the cache shows them. */
  private readonly created = new Map<string, { migration: Migration; at: number }>();

  constructor(private readonly options: EvacuationReconcilerOptions) {
    this.vmsByNode = new CacheIndex(options.vms, (vm) => (vm.status?.node ? [vm.status.node] : []));
    this.migrationsByVm = new CacheIndex(options.migrations, (m) => [
      vmKeyOf(m.metadata.namespace, m.spec.vmName),
    ]);
  }

  /** VM → the node its record names (the node it may have to leave). */
  readonly nodeKeysForVm = (vm: VirtualMachine): string[] => (vm.status?.node ? [vm.status.node] : []);

  /** Migration → the node it evacuates, and its source node. */
  readonly nodeKeysForMigration = (migration: Migration): string[] => {
    const keys = [migration.metadata.labels?.[EVACUATION_NODE_LABEL], migration.status?.sourceNode];
    return [...new Set(keys.filter((key): key is string => !!key))];
  };

  readonly reconcile = async (
    request: ReconcileRequest,
    context: ReconcileContext,
  ): Promise<ReconcileResult> => {
    // Every VM and heartbeat change wakes its node; most nodes have nothing to evacuate. (A drain set since the
    // informer's copy arrives as an informer update of its own, which wakes this again.)
    const cached = this.options.nodes.get(request.key);
    const observed = cached?.status?.observedGeneration === cached?.metadata.generation;
    if (!cached?.spec?.drain && !cached?.status?.evacuation && observed) return;
    // A conflict: the daemon's status heartbeat moved the node on; plan again from what is stored now.
    return retryOnConflict(STATUS_RETRIES, (attempt) =>
      this.evacuate(request.name, attempt === 0 ? cached : undefined, context),
    );
  };

  private async evacuate(
    name: string,
    cached: HypervisorNode | undefined,
    context: ReconcileContext,
  ): Promise<ReconcileResult> {
    const { client } = this.options;
    let node: HypervisorNode;
    try {
      node = cached ?? (await client.get<HypervisorNode>(HypervisorNodes, name));
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    const vms = this.vmsByNode.get(name);
    const here = new Set(vms.map((vm) => vmKeyOf(vm.metadata.namespace, vm.metadata.name)));
    const migrations = [...here].flatMap((key) => this.migrationsByVm.get(key));
    for (const migration of this.createdNotCached())
      if (here.has(vmKeyOf(migration.metadata.namespace, migration.spec.vmName))) migrations.push(migration);
    const plan = planEvacuation({ node, vms, migrations, now: new Date() });
    for (const vm of plan.migrate) {
      const current = lagsBehind(vm, migrations) ? await this.liveVm(vm) : vm;
      if (current?.status?.node !== name || current.status.activeMigration) continue;
      const created = await client.create<Migration>(Migrations, evacuationMigration(current, name));
      this.created.set(objectKey(created), { migration: created, at: Date.now() });
      context.logger.info(
        { vm: `${vm.metadata.namespace}/${vm.metadata.name}`, migration: created.metadata.name },
        'evacuation migration created',
      );
    }
    const previous = node.status?.evacuation;
    const status = { ...node.status };
    if (plan.status) status.evacuation = plan.status;
    else delete status.evacuation;
    // This reconciler acts on the node's spec (drain; unschedulable needs nothing here): it records the generation
    // it acted on, and the drain's progress as kstatus's Reconciling/Stalled.
    status.observedGeneration = node.metadata.generation;
    status.conditions = withKstatus(
      status.conditions,
      hypervisorNodeVerdict(status),
      node.metadata.generation,
    );
    if (
      !sameEvacuation(previous, plan.status) ||
      node.status?.observedGeneration !== status.observedGeneration ||
      !conditionsEqual(node.status?.conditions, status.conditions)
    ) {
      const updated = await client.replaceStatus<HypervisorNode>(HypervisorNodes, { ...node, status });
      await this.recordTransition(updated, previous, plan.status);
    }
    return plan.status?.phase === 'Evacuating'
      ? { requeueAfterMs: this.options.recheckMs ?? 5_000 }
      : undefined;
  }

  /** The Migrations created here that the cache does not show yet (forgotten once it does, or after a while). */
  private createdNotCached(): Migration[] {
    const pending: Migration[] = [];
    for (const [key, { migration, at }] of this.created) {
      if (this.options.migrations.get(key) !== undefined || Date.now() - at > ASSUMED_CREATE_MS)
        this.created.delete(key);
      else pending.push(migration);
    }
    return pending;
  }

  private async liveVm(vm: VirtualMachine): Promise<VirtualMachine | undefined> {
    try {
      return await this.options.client.get<VirtualMachine>(
        VirtualMachines,
        vm.metadata.name!,
        vm.metadata.namespace,
      );
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  private async recordTransition(
    node: HypervisorNode,
    previous: EvacuationStatus | undefined,
    next: EvacuationStatus | undefined,
  ): Promise<void> {
    if (previous?.phase === next?.phase) return;
    const { events } = this.options;
    if (!next) {
      if (previous?.phase !== 'Evacuated')
        await events.record(node, 'Normal', 'EvacuationCancelled', 'drain lifted before the node was empty');
    } else if (next.phase === 'Evacuating')
      await events.record(node, 'Normal', 'EvacuationStarted', `evacuating ${next.remaining} VMs`);
    else if (next.phase === 'Evacuated')
      await events.record(node, 'Normal', 'Evacuated', `${next.total} VMs evacuated, none left`);
    else
      await events.record(
        node,
        'Warning',
        'EvacuationBlocked',
        `${next.remaining} VMs cannot leave: ${next.message ?? ''}`,
      );
  }
}
