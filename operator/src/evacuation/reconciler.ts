// Evacuation of drained HypervisorNodes: one Migration (no targetNode, so placement picks one and the Migration
// reconciler applies the concurrency limits) per VM with evictionStrategy LiveMigrate that has no unfinished
// Migration, and the progress in the node's status.evacuation with Events on start and finish.
//
// Idempotence: a node's reconciles never overlap, and each reads the node, the Migrations and the VMs live from the
// API (informers may not have seen this node's last writes yet), so a VM never gets two evacuation Migrations and
// the status is computed from the last one written. The informers only wake the reconciler.
import type { HypervisorNode, Migration, VirtualMachine } from '../../../crds/index.js';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.js';
import type { Informer } from '../runtime/informer.js';
import { retryOnConflict } from '../runtime/conflict.js';
import type { KubeClient } from '../../../kube/client.js';
import { isNotFound } from '../../../kube/errors.js';
import type { EventRecorder } from '../../../kube/events.js';
import { evacuationMigration, planEvacuation, sameEvacuation, type EvacuationStatus } from './plan.js';
import { EVACUATION_NODE_LABEL, HypervisorNodes, Migrations, VirtualMachines } from '../../../crds/index.js';
import { conditionsEqual } from '../../../kube/conditions.js';
import { hypervisorNodeVerdict, withKstatus } from '../kstatus/conditions.js';

export interface EvacuationReconcilerOptions {
  client: KubeClient;
  /** Only to skip nodes that are neither drained nor carry an evacuation record, without an API call. */
  nodes: Informer<HypervisorNode>;
  events: EventRecorder;
  /** How often an ongoing evacuation looks again (VM and Migration changes also wake it). */
  recheckMs?: number;
}

const STATUS_RETRIES = 5;

export class EvacuationReconciler {
  constructor(private readonly options: EvacuationReconcilerOptions) {}

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
    return retryOnConflict(STATUS_RETRIES, () => this.evacuate(request.name, context));
  };

  private async evacuate(name: string, context: ReconcileContext): Promise<ReconcileResult> {
    const { client } = this.options;
    let node: HypervisorNode;
    try {
      node = await client.get<HypervisorNode>(HypervisorNodes, name);
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    // Migrations before VMs: a VM read after its Migration finished already shows where it went.
    const migrations = await client.list<Migration>(Migrations);
    const vms = await client.list<VirtualMachine>(VirtualMachines);
    const plan = planEvacuation({ node, vms: vms.items, migrations: migrations.items, now: new Date() });
    for (const vm of plan.migrate) {
      const created = await client.create<Migration>(Migrations, evacuationMigration(vm, name));
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
