// The VirtualMachine reconciler: places a VM on a HypervisorNode, starts, stops, restarts and deletes its guest
// through that node's daemon, and reports phase, node, epoch and conditions through the status subresource.
//
// Level-triggered: every pass reads the VM from the API, the node from the informer and the guest from the daemon,
// and does the one next step. The guest is observed by polling GetGuest (requeueAfter: fast while it starts or
// stops, pollIntervalMs while it runs) rather than by WatchGuests streams: a poll needs no per-node stream
// bookkeeping, survives daemon and operator restarts without resync logic, and a missed change is impossible —
// the cost is up to pollIntervalMs of delay before a crash is noticed.
//
// Ownership: status.node + status.epoch record which node owns the guest. A VM is placed only while status.node is
// empty, with a compare-and-swap status write (resourceVersion) that sets node and epoch+1; a VM whose node is not
// Ready becomes Unknown and is not started anywhere else — until the node is lost (HypervisorNode Fenced=True: no
// Lease renewal for the node's fence time plus the operator's margin, so the node has killed its guests). Then the
// VM gets NodeLost=True and, with spec.nodeLossPolicy Restart, its record moves by the same compare-and-swap to
// another Ready node (epoch+1), where its guest is created. A VM in phase Migrating belongs to the Migration
// reconciler and is left alone here.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type {
  HypervisorNode,
  Migration,
  VirtualMachine,
  VirtualMachinePhase,
  VirtualMachineStatus,
} from '../../../crds/index.js';
import {
  conditionsEqual,
  removeCondition,
  setCondition,
  type ConditionUpdate,
} from '../../../kube/conditions.js';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.js';
import type { Informer } from '../runtime/informer.js';
import type { KubeClient } from '../../../kube/client.js';
import { isNotFound } from '../../../kube/errors.js';
import type { EventRecorder, EventType } from '../../../kube/events.js';
import { addFinalizer, isBeingDeleted, objectKey, removeFinalizer } from '../../../kube/objects.js';
import { isGrpcError, type Guest__Output } from '../../../proto/index.js';
import type { DaemonGuestClient } from '../daemon/guest-client.js';
import type { DaemonClientPool } from '../daemon/client-pool.js';
import { isNodeReady, placeVirtualMachine } from '../placement/placement.js';
import { isNodeLost } from '../hypervisornode/health.js';
import { configuredGuestAddress, toGuestSpec, vmMacAddress } from './guest-spec.js';
import { guestName } from '../daemon/guest-key.js';
import { incomingReservations } from '../migration/state.js';
import { ownershipMovedTo, RESTART_REQUIRED_CONDITION, VirtualMachines } from '../../../crds/index.js';
import { virtualMachineConditions } from '../kstatus/conditions.js';
import { nextGuestStep, pendingRestart, type GuestStep, type ReadyState } from './state.js';

/** Keeps a VM object until its guest is stopped and deleted on the node. */
export const VM_FINALIZER = 'tern.dev/guest';

export const VM_CONDITIONS = {
  Ready: 'Ready',
  Scheduled: 'Scheduled',
  /** True once the operator restarted a crashed guest; reason = the daemon's cause, message = when and where. */
  Restarted: 'Restarted',
  /**
   * True while the VM's node is lost (reason WaitingForNode: nodeLossPolicy Wait; NoNodeAvailable: Restart, but
   * no node can take it yet); False once it moved (RestartedElsewhere) or the node returned (NodeReturned).
   */
  NodeLost: 'NodeLost',
  /** True while the running guest's cpu or memory differs from the spec (applied when the guest starts again). */
  RestartRequired: RESTART_REQUIRED_CONDITION,
} as const;

export interface VirtualMachineReconcilerOptions {
  client: KubeClient;
  pool: DaemonClientPool;
  nodes: Informer<HypervisorNode>;
  vms: Informer<VirtualMachine>;
  /** Migrations heading to a node hold the moving VM's resources there (placement counts them). */
  migrations: Informer<Migration>;
  events: EventRecorder;
  /** GetGuest interval while the guest runs. */
  pollIntervalMs: number;
  /** Graceful stop timeout handed to the daemon. */
  stopTimeoutMs: number;
  /** Retry interval of a VM no node can take (node and VM changes also trigger a retry). */
  unschedulableRetryMs?: number;
  now?: () => Date;
}

interface StatusChange {
  phase: VirtualMachinePhase;
  conditions?: ConditionUpdate[];
  node?: string | null;
  epoch?: number;
  /**
   * RestartRequired: its message when the running guest lags the spec, null when it does not (or a new guest is
   * created from the spec), undefined to keep what status says.
   */
  restartRequired?: string | null;
  /** Recorded when the phase changes, and for a Warning whenever the status changes (e.g. a new reason). */
  event: { type: EventType; reason: string; message: string };
}

const TRANSITION_POLL_MS = 1_000;
/** How long a placement written by this process counts even though the VM informer has not shown it yet. */
const ASSUMED_PLACEMENT_MS = 60_000;

export class VirtualMachineReconciler {
  /** Placements this process wrote, until the informer shows them: two placements never miss each other. */
  private readonly assumed = new Map<string, { vm: VirtualMachine; at: number }>();
  private placing: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: VirtualMachineReconcilerOptions) {}

  readonly reconcile = async (
    request: ReconcileRequest,
    context: ReconcileContext,
  ): Promise<ReconcileResult> => {
    // The watch cache answers the reconciles that find nothing to do (the Migration reconciler owns the VM; the
    // running guest's poll that changes nothing); one that acts reads the VM from the API first.
    const cached = this.options.vms.get(request.key);
    if (cached?.status?.phase === 'Migrating') return; // its release arrives as an informer event
    const idle = cached !== undefined ? await this.idlePoll(cached) : undefined;
    if (idle !== undefined) return idle;
    let vm: VirtualMachine;
    try {
      vm = await this.options.client.get<VirtualMachine>(VirtualMachines, request.name, request.namespace);
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    if (vm.status?.phase === 'Migrating') {
      context.logger.debug('phase Migrating: the Migration reconciler owns this VM');
      return;
    }
    if (isBeingDeleted(vm)) return this.finalize(vm, context.logger);
    vm = await addFinalizer(this.options.client, VirtualMachines, vm, VM_FINALIZER);

    const nodeName = vm.status?.node;
    if (!nodeName) {
      if (!vm.spec.running) {
        await this.updateStatus(vm, {
          phase: 'Stopped',
          conditions: [ready('False', 'NotRunning', 'spec.running is false')],
          event: { type: 'Normal', reason: 'Stopped', message: 'spec.running is false' },
        });
        return;
      }
      return this.schedule(vm, context.logger);
    }
    const node = this.options.nodes.get(nodeName);
    if (node && isNodeLost(node)) return this.onNodeLost(vm, node, context.logger);
    if (!node || !isNodeReady(node)) return this.reportNodeNotReady(vm, nodeName, node);
    if (vm.status?.conditions?.some((c) => c.type === VM_CONDITIONS.NodeLost && c.status === 'True')) {
      const message = `${nodeName} renews its Lease again; the guest there follows restartPolicy`;
      vm = await this.updateStatus(vm, {
        phase: vm.status.phase ?? 'Unknown',
        conditions: [nodeLost('False', 'NodeReturned', message)],
        event: { type: 'Normal', reason: 'NodeReturned', message },
      });
    }
    const daemon = this.options.pool.guestClient(nodeName, node.status!.endpoint!);
    return this.driveGuest(vm, daemon, context.logger);
  };

  /**
   * The VM's node is lost: its guest was killed there by the node's watchdog. A VM that should not run gives up
   * the node; nodeLossPolicy Wait keeps it there with NodeLost=True; Restart moves its record to another node.
   */
  private async onNodeLost(
    vm: VirtualMachine,
    node: HypervisorNode,
    logger: Logger,
  ): Promise<ReconcileResult> {
    const name = node.metadata.name!;
    const why = node.status?.conditions?.find((c) => c.type === 'Fenced')?.message ?? 'no Lease renewal';
    const lost = `node ${name} is lost (${why})`;
    if (!vm.spec.running) {
      await this.updateStatus(vm, {
        phase: 'Stopped',
        node: null,
        conditions: [ready('False', 'NotRunning', `spec.running is false; the guest was fenced on ${name}`)],
        event: { type: 'Normal', reason: 'Stopped', message: `${lost}; spec.running is false` },
      });
      return;
    }
    // A guest already down for good there (restartPolicy Never) is not started elsewhere either.
    const down = vm.status?.phase === 'Failed' || vm.status?.phase === 'Stopped';
    if (down || (vm.spec.nodeLossPolicy ?? 'Wait') === 'Wait') {
      const message = down
        ? `${lost}; the guest was already ${vm.status!.phase!.toLowerCase()} there and is not started elsewhere`
        : `${lost}; nodeLossPolicy Wait: the VM stays on ${name} until it returns`;
      await this.updateStatus(vm, {
        phase: down ? vm.status!.phase! : 'Unknown',
        conditions: [nodeLost('True', 'WaitingForNode', message), ready('Unknown', 'NodeLost', message)],
        event: { type: 'Warning', reason: 'NodeLost', message },
      });
      return;
    }
    // One placement at a time: each sees the ones before it.
    const placed = this.placing.then(() => this.restartElsewhere(vm, name, lost, logger));
    this.placing = placed.catch(() => undefined);
    return placed;
  }

  /** nodeLossPolicy Restart: the record moves to another Ready node (compare-and-swap, epoch+1). */
  private async restartElsewhere(
    vm: VirtualMachine,
    from: string,
    lost: string,
    logger: Logger,
  ): Promise<ReconcileResult> {
    const vms = this.knownVms();
    const incoming = incomingReservations(this.options.migrations.list(), vms);
    const result = placeVirtualMachine(vm, this.options.nodes.list(), vms, incoming);
    if (result.node === undefined) {
      const message = `${lost}; no other node can take the VM: ${result.message}`;
      await this.updateStatus(vm, {
        phase: 'Unknown',
        conditions: [nodeLost('True', 'NoNodeAvailable', message), ready('Unknown', 'NodeLost', message)],
        event: { type: 'Warning', reason: 'NodeLost', message },
      });
      return { requeueAfterMs: this.options.unschedulableRetryMs ?? 10_000 };
    }
    const { epoch } = ownershipMovedTo(vm.status, result.node);
    const message = `${lost}; the guest starts on ${result.node} (nodeLossPolicy Restart, ownership epoch ${epoch})`;
    const updated = await this.updateStatus(vm, {
      phase: 'Scheduling',
      node: result.node,
      epoch,
      conditions: [
        nodeLost('False', 'RestartedElsewhere', `${this.timestamp()}: ${message}`),
        {
          type: VM_CONDITIONS.Restarted,
          status: 'True',
          reason: 'NodeLost',
          message: `${this.timestamp()}: ${message}`,
        },
        { type: VM_CONDITIONS.Scheduled, status: 'True', reason: 'Placed', message: result.message },
        ready('False', 'Scheduled', `starting on ${result.node}`),
      ],
      event: { type: 'Warning', reason: 'RestartedElsewhere', message },
    });
    this.assumed.set(vm.metadata.uid!, { vm: updated, at: Date.now() });
    logger.warn({ from, node: result.node, epoch }, 'node lost; VM restarted elsewhere');
    return { requeueAfterMs: 0 };
  }

  /** The keys of the VMs a HypervisorNode change concerns: those on it, and those still waiting for a node. */
  readonly vmKeysForNode = (node: HypervisorNode): string[] =>
    this.options.vms
      .list()
      .filter((vm) => vm.status?.node === node.metadata.name || (!vm.status?.node && vm.spec.running))
      .map((vm) => objectKey(vm));

  private async schedule(vm: VirtualMachine, logger: Logger): Promise<ReconcileResult> {
    if (vm.status?.phase !== 'Pending') {
      vm = await this.updateStatus(vm, {
        phase: 'Pending',
        conditions: [ready('False', 'Pending', 'waiting for a node')],
        event: { type: 'Normal', reason: 'Pending', message: 'waiting for a node' },
      });
    }
    // One placement at a time: each sees the ones before it.
    const placed = this.placing.then(() => this.place(vm, logger));
    this.placing = placed.catch(() => undefined);
    return placed;
  }

  private async place(vm: VirtualMachine, logger: Logger): Promise<ReconcileResult> {
    const vms = this.knownVms();
    const incoming = incomingReservations(this.options.migrations.list(), vms);
    const result = placeVirtualMachine(vm, this.options.nodes.list(), vms, incoming);
    if (result.node === undefined) {
      await this.updateStatus(vm, {
        phase: 'Pending',
        conditions: [
          { type: VM_CONDITIONS.Scheduled, status: 'False', reason: result.reason, message: result.message },
          ready('False', 'Unschedulable', result.message),
        ],
        event: { type: 'Warning', reason: 'FailedScheduling', message: result.message },
      });
      return { requeueAfterMs: this.options.unschedulableRetryMs ?? 10_000 };
    }
    const { epoch } = ownershipMovedTo(vm.status, result.node);
    const updated = await this.updateStatus(vm, {
      phase: 'Scheduling',
      node: result.node,
      epoch,
      conditions: [
        { type: VM_CONDITIONS.Scheduled, status: 'True', reason: 'Placed', message: result.message },
        ready('False', 'Scheduled', `starting on ${result.node}`),
      ],
      event: { type: 'Normal', reason: 'Scheduled', message: `${result.message}; ownership epoch ${epoch}` },
    });
    this.assumed.set(vm.metadata.uid!, { vm: updated, at: Date.now() });
    logger.info({ node: result.node, epoch }, 'placed');
    return { requeueAfterMs: 0 };
  }

  /** The VM informer's objects, with placements written here that it has not shown yet. */
  private knownVms(): VirtualMachine[] {
    const byUid = new Map(this.options.vms.list().map((vm) => [vm.metadata.uid, vm]));
    for (const [uid, { vm, at }] of this.assumed) {
      const cached = byUid.get(uid);
      const caughtUp =
        cached && BigInt(cached.metadata.resourceVersion!) >= BigInt(vm.metadata.resourceVersion!);
      if (caughtUp || Date.now() - at > ASSUMED_PLACEMENT_MS) this.assumed.delete(uid);
      else byUid.set(uid, vm);
    }
    return [...byUid.values()];
  }

  /**
   * The poll of a guest that runs where the VM's record says and whose status would not change, answered from the
   * watch cache's copy: the requeue, or undefined when the reconcile may have to act. A stale copy only sends the
   * reconcile to the API (its status differs from what the daemon reports) or is woken again by the informer.
   */
  private async idlePoll(cached: VirtualMachine): Promise<ReconcileResult | undefined> {
    const nodeName = cached.status?.node;
    if (!nodeName || isBeingDeleted(cached) || !cached.metadata.finalizers?.includes(VM_FINALIZER)) return;
    if (cached.status?.conditions?.some((c) => c.type === VM_CONDITIONS.NodeLost && c.status === 'True'))
      return;
    const node = this.options.nodes.get(nodeName);
    if (!node || !isNodeReady(node) || isNodeLost(node)) return;
    const guest = await this.options.pool
      .guestClient(nodeName, node.status!.endpoint!)
      .getGuest(guestName(cached));
    const step = nextGuestStep(cached, guest);
    if (step.kind !== 'report') return;
    const current = cached.status ?? {};
    if (!statusEqual(current, this.nextStatus(cached, reportChange(cached, step, guest)))) return;
    return this.poll(step.phase) ?? {};
  }

  private async driveGuest(
    vm: VirtualMachine,
    daemon: DaemonGuestClient,
    logger: Logger,
  ): Promise<ReconcileResult> {
    const name = guestName(vm);
    const node = vm.status!.node!;
    const guest = await daemon.getGuest(name);
    const step = nextGuestStep(vm, guest);
    switch (step.kind) {
      case 'report':
        await this.updateStatus(vm, reportChange(vm, step, guest));
        return this.poll(step.phase);
      case 'conflict':
        await this.updateStatus(vm, {
          phase: 'Failed',
          conditions: [ready('False', 'GuestNameConflict', step.message)],
          event: { type: 'Warning', reason: 'GuestNameConflict', message: step.message },
        });
        return;
      case 'create':
      case 'restart': {
        if (step.kind === 'restart') {
          const message = `guest failed on ${node} (${step.message}); restarting it there (restartPolicy Always)`;
          logger.warn({ cause: step.cause }, 'restarting guest');
          await this.options.events.record(vm, 'Warning', 'GuestRestarted', message);
          vm = await this.updateStatus(vm, {
            phase: 'Starting',
            conditions: [
              {
                type: VM_CONDITIONS.Restarted,
                status: 'True',
                reason: step.cause,
                message: `${this.timestamp()}: ${message}`,
              },
              ready('False', 'Restarting', message),
            ],
            restartRequired: null,
            event: { type: 'Normal', reason: 'Starting', message: `restarting the guest on ${node}` },
          });
          await daemon.deleteGuest(name, this.options.stopTimeoutMs);
        } else {
          vm = await this.updateStatus(vm, {
            phase: 'Starting',
            conditions: [ready('False', 'GuestStarting', `creating the guest on ${node}`)],
            restartRequired: null,
            event: { type: 'Normal', reason: 'Starting', message: `creating the guest on ${node}` },
          });
        }
        return this.createGuest(vm, daemon);
      }
      case 'stop':
        vm = await this.updateStatus(vm, {
          phase: 'Stopping',
          conditions: [ready('False', 'Stopping', 'spec.running is false')],
          event: { type: 'Normal', reason: 'Stopping', message: `stopping the guest on ${node}` },
        });
        await daemon.stopGuest(name, this.options.stopTimeoutMs);
        return this.release(vm, daemon);
      case 'release':
        return this.release(vm, daemon);
    }
  }

  private async createGuest(vm: VirtualMachine, daemon: DaemonGuestClient): Promise<ReconcileResult> {
    try {
      await daemon.createGuest(toGuestSpec(vm));
    } catch (error) {
      // A create that reached the daemon before this process died (or timed out here): look again.
      if (isGrpcError(error, grpc.status.ALREADY_EXISTS)) return { requeueAfterMs: 0 };
      if (
        isGrpcError(error, grpc.status.INVALID_ARGUMENT) ||
        isGrpcError(error, grpc.status.FAILED_PRECONDITION)
      ) {
        const message = `the daemon on ${daemon.nodeName} refused the guest: ${error.details}`;
        await this.updateStatus(vm, {
          phase: 'Failed',
          conditions: [ready('False', 'GuestRejected', message)],
          event: { type: 'Warning', reason: 'GuestRejected', message },
        });
        return;
      }
      throw error;
    }
    return { requeueAfterMs: 0 };
  }

  /** The guest is down or gone: delete it and give up the node (a later start places the VM afresh). */
  private async release(vm: VirtualMachine, daemon: DaemonGuestClient): Promise<ReconcileResult> {
    await daemon.deleteGuest(guestName(vm), this.options.stopTimeoutMs);
    await this.updateStatus(vm, {
      phase: 'Stopped',
      node: null,
      conditions: [ready('False', 'NotRunning', 'spec.running is false')],
      restartRequired: null,
      event: {
        type: 'Normal',
        reason: 'Stopped',
        message: `the guest on ${daemon.nodeName} is stopped and deleted`,
      },
    });
  }

  private async reportNodeNotReady(
    vm: VirtualMachine,
    nodeName: string,
    node: HypervisorNode | undefined,
  ): Promise<ReconcileResult> {
    const nodeReady = node?.status?.conditions?.find((c) => c.type === 'Ready');
    const reason = node ? 'NodeNotReady' : 'NodeNotFound';
    // The daemon's published fence time, for the message only: the decision waits for Fenced (health.ts).
    const fence = node?.status?.fenceAfterSeconds;
    const elsewhere = fence
      ? `the guest is not started elsewhere before the node is lost (no renewal for its fence time, ${fence} s, plus the operator's margin)`
      : 'the node does not fence itself, so the guest is never started elsewhere';
    const message = node
      ? `HypervisorNode ${nodeName} is not ready (${nodeReady?.reason ?? 'no Ready condition'}: ${nodeReady?.message ?? ''}); ${elsewhere}`
      : `HypervisorNode ${nodeName} does not exist; the guest is not started elsewhere`;
    await this.updateStatus(vm, {
      phase: 'Unknown',
      conditions: [ready('Unknown', reason, message)],
      event: { type: 'Warning', reason, message },
    });
    // A node change enqueues this VM again.
  }

  private async finalize(vm: VirtualMachine, logger: Logger): Promise<ReconcileResult> {
    if (!vm.metadata.finalizers?.includes(VM_FINALIZER)) return;
    const nodeName = vm.status?.node;
    if (nodeName) {
      const node = this.options.nodes.get(nodeName);
      if (node && isNodeLost(node)) {
        // Its guest was killed there by the node's watchdog; the node deletes nothing while it is away, and the
        // stale-guest sweep removes the guest dir once the node returns.
        await this.options.events.record(
          vm,
          'Warning',
          'NodeLost',
          `node ${nodeName} is lost; its fenced guest stays in its state directory`,
        );
      } else if (!node || !isNodeReady(node)) {
        await this.reportNodeNotReady(vm, nodeName, node);
        logger.warn(
          { node: nodeName },
          `cannot delete the guest; remove finalizer ${VM_FINALIZER} to abandon it`,
        );
        return { requeueAfterMs: this.options.unschedulableRetryMs ?? 10_000 };
      } else {
        const daemon = this.options.pool.guestClient(nodeName, node.status!.endpoint!);
        const guest = await daemon.getGuest(guestName(vm));
        if (guest && guest.spec?.uuid === vm.metadata.uid) {
          vm = await this.updateStatus(vm, {
            phase: 'Stopping',
            conditions: [ready('False', 'Deleting', 'the VirtualMachine is being deleted')],
            event: { type: 'Normal', reason: 'Stopping', message: `deleting the guest on ${nodeName}` },
          });
          await daemon.deleteGuest(guestName(vm), this.options.stopTimeoutMs);
          await this.options.events.record(vm, 'Normal', 'GuestDeleted', `deleted the guest on ${nodeName}`);
        }
      }
    }
    await removeFinalizer(this.options.client, VirtualMachines, vm, VM_FINALIZER);
  }

  private poll(phase: VirtualMachinePhase): ReconcileResult {
    if (phase === 'Running') return { requeueAfterMs: this.options.pollIntervalMs };
    if (phase === 'Starting' || phase === 'Stopping') {
      return { requeueAfterMs: Math.min(TRANSITION_POLL_MS, this.options.pollIntervalMs) };
    }
    return undefined;
  }

  /** Writes the status through the subresource (compare-and-swap on resourceVersion) when it changes. */
  private async updateStatus(vm: VirtualMachine, change: StatusChange): Promise<VirtualMachine> {
    const current = vm.status ?? {};
    const next = this.nextStatus(vm, change);
    if (statusEqual(current, next)) return vm;
    const updated = await this.options.client.replaceStatus<VirtualMachine>(VirtualMachines, {
      ...vm,
      status: next,
    });
    if (current.phase !== next.phase || change.event.type === 'Warning') {
      await this.options.events.record(updated, change.event.type, change.event.reason, change.event.message);
    }
    return updated;
  }

  /** The status `change` makes of the VM's. */
  private nextStatus(vm: VirtualMachine, change: StatusChange): VirtualMachineStatus {
    const current = vm.status ?? {};
    const now = this.options.now?.() ?? new Date();
    let conditions = current.conditions;
    for (const update of change.conditions ?? []) {
      conditions = setCondition(conditions, { ...update, observedGeneration: vm.metadata.generation }, now);
    }
    if (change.restartRequired === null)
      conditions = removeCondition(conditions, VM_CONDITIONS.RestartRequired);
    else if (change.restartRequired !== undefined) {
      conditions = setCondition(
        conditions,
        {
          type: VM_CONDITIONS.RestartRequired,
          status: 'True',
          reason: 'SpecChanged',
          message: change.restartRequired,
          observedGeneration: vm.metadata.generation,
        },
        now,
      );
    }
    conditions = virtualMachineConditions(
      vm.spec,
      { ...current, phase: change.phase, conditions },
      vm.metadata.generation,
      now,
    );
    const next: VirtualMachineStatus = {
      ...current,
      phase: change.phase,
      conditions,
      macAddress: vmMacAddress(vm),
      guestAddress: configuredGuestAddress(vm),
      observedGeneration: vm.metadata.generation,
    };
    if (next.guestAddress === undefined) delete next.guestAddress;
    if (change.node === null) delete next.node;
    else if (change.node !== undefined) next.node = change.node;
    if (change.epoch !== undefined) next.epoch = change.epoch;
    return next;
  }

  private timestamp(): string {
    return (this.options.now?.() ?? new Date()).toISOString();
  }
}

/** What the guest the daemon reports (a 'report' step) makes of the VM's status. */
function reportChange(
  vm: VirtualMachine,
  step: Extract<GuestStep, { kind: 'report' }>,
  guest: Guest__Output | undefined,
): StatusChange {
  return {
    phase: step.phase,
    conditions: [readyFrom(step.ready)],
    ...(step.phase === 'Running' && guest ? { restartRequired: pendingRestart(vm, guest) ?? null } : {}),
    event: {
      type: step.phase === 'Failed' ? 'Warning' : 'Normal',
      reason: step.phase === 'Running' ? 'Started' : step.phase,
      message: `${step.ready.reason}: ${step.ready.message}`,
    },
  };
}

function ready(status: ReadyState['status'], reason: string, message: string): ConditionUpdate {
  return { type: VM_CONDITIONS.Ready, status, reason, message };
}

function nodeLost(status: 'True' | 'False', reason: string, message: string): ConditionUpdate {
  return { type: VM_CONDITIONS.NodeLost, status, reason, message };
}

function readyFrom(state: ReadyState): ConditionUpdate {
  return ready(state.status, state.reason, state.message);
}

function statusEqual(a: VirtualMachineStatus, b: VirtualMachineStatus): boolean {
  const fields = ['phase', 'node', 'epoch', 'macAddress', 'guestAddress', 'observedGeneration'] as const;
  return fields.every((field) => a[field] === b[field]) && conditionsEqual(a.conditions, b.conditions);
}
