// HypervisorNode health from the daemon's heartbeat: each daemon renews a Lease named after its node (in the
// node-lease namespace) and rewrites its status (status.heartbeatTime) now and then. When the operator has seen
// neither change for leaseDurationSeconds, the node gets Ready=False/LeaseExpired and the VirtualMachine reconciler
// reports its VMs as Unknown — and never starts them elsewhere, since the guest may well still run there. When the
// Lease is renewed again, Ready returns to True (LeaseRenewed) and the VMs to their real phase.
//
// Everything is measured on the operator's own clock: the operator notes when IT saw the daemon's heartbeat values
// change, and never compares a timestamp the daemon wrote (renewTime, heartbeatTime) with its own clock. A daemon
// whose clock runs days ahead or behind therefore neither stays Ready after it died nor flaps while it lives, and
// the requeue delays are clamped, so that no value a node writes makes the operator spin or sleep for days.
//
// Node loss: a daemon that fences itself publishes its fence time on its Lease (FENCE_AFTER_ANNOTATION); its
// watchdog kills its guests that long after the start of its last successful renewal. When this operator has seen
// no heartbeat for the fence time plus its margin, the node gets Fenced=True (FenceTimeElapsed), and the VM
// reconciler may start the node's VMs elsewhere. Since the operator's count starts when it SEES a renewal (after
// the request started), the node's deadline falls first as long as the two clocks run at about the same rate; the
// margin covers the rate difference, the watchdog's tick and QEMU's exit (docs/architecture.md "Node failure").
import type { HypervisorNode } from '../../../crds/index.js';
import { FENCE_AFTER_ANNOTATION, HYPERVISOR_NODE_CONDITIONS } from '../../../crds/index.js';
import { findCondition, setCondition, type ConditionUpdate } from '../../../kube/conditions.js';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.js';
import type { Informer } from '../runtime/informer.js';
import type { Lease } from '../runtime/leader.js';
import type { KubeClient } from '../../../kube/client.js';
import type { EventRecorder } from '../../../kube/events.js';
import { hypervisorNodeVerdict, withKstatus } from '../kstatus/conditions.js';
import { HypervisorNodes } from '../../../crds/index.js';

export const LEASE_EXPIRED = 'LeaseExpired';
export const LEASE_RENEWED = 'LeaseRenewed';
/** Fenced=True: no heartbeat for the node's fence time plus the margin, on the operator's clock. */
export const FENCE_TIME_ELAPSED = 'FenceTimeElapsed';
/** Default of the operator's margin on top of a node's fence time (--node-loss-margin-seconds). */
export const DEFAULT_NODE_LOSS_MARGIN_MS = 30_000;

/** The bounds of every requeue delay: never a busy loop, never a sleep longer than this. */
export const MIN_REQUEUE_MS = 1_000;
export const MAX_REQUEUE_MS = 5 * 60_000;
/** A re-check is scheduled this long after the expiry, so that it falls after it. */
const AFTER_EXPIRY_MS = 100;

export interface HypervisorNodeHealthOptions {
  client: KubeClient;
  nodes: Informer<HypervisorNode>;
  /** Leases in the node-lease namespace. */
  leases: Informer<Lease>;
  leaseNamespace: string;
  events: EventRecorder;
  /** A node without a Lease is considered expired this long after the operator first saw it without one. */
  missingLeaseGraceMs?: number;
  /** Added to a node's fence time before its VMs may start elsewhere (default DEFAULT_NODE_LOSS_MARGIN_MS). */
  nodeLossMarginMs?: number;
  now?: () => Date;
}

/**
 * What this operator last saw a daemon write, and when it saw it change — on the operator's clock. The values
 * are only compared for equality, never read as times.
 */
export interface HeartbeatObservation {
  /** The Lease's resourceVersion and renewTime; undefined while the node has no usable Lease. */
  lease: string | undefined;
  /** The HypervisorNode's status.heartbeatTime, as written. */
  heartbeat: string | undefined;
  /** When (ms, operator clock) a heartbeat value last changed, or when this operator first looked at the node. */
  since: number;
  /** False until this operator has seen a heartbeat value change (its clock was started by its first look). */
  changed: boolean;
  /** When (ms, operator clock) this operator first saw the node without a usable Lease; undefined while it has one. */
  missingSince: number | undefined;
}

/** A usable Lease has a renewTime and a duration; anything else counts as no Lease. */
function usableLease(lease: Lease | undefined): lease is Lease & { spec: { leaseDurationSeconds: number } } {
  return Boolean(lease?.spec?.renewTime) && (lease?.spec?.leaseDurationSeconds ?? 0) > 0;
}

/**
 * Pure: the observation after looking at the node and its Lease at `now` (ms, operator clock). A heartbeat is a
 * change of a value the daemon writes: the Lease's resourceVersion or renewTime, or the node's
 * status.heartbeatTime. A Lease that disappears is no heartbeat. Without a `previous` observation (the node is
 * new, or the operator just started or took over leadership) the clock starts now.
 */
export function observeHeartbeat(
  previous: HeartbeatObservation | undefined,
  node: HypervisorNode,
  lease: Lease | undefined,
  now: number,
): HeartbeatObservation {
  const usable = usableLease(lease);
  const leaseMark = usable ? `${lease.metadata.resourceVersion ?? ''}/${lease.spec.renewTime}` : undefined;
  const heartbeat = node.status?.heartbeatTime;
  if (!previous)
    return {
      lease: leaseMark,
      heartbeat,
      since: now,
      changed: false,
      missingSince: usable ? undefined : now,
    };
  const beat =
    (leaseMark !== undefined && leaseMark !== previous.lease) ||
    (heartbeat !== undefined && heartbeat !== previous.heartbeat);
  return {
    lease: leaseMark,
    heartbeat,
    since: beat ? now : previous.since,
    changed: previous.changed || beat,
    missingSince: usable ? undefined : (previous.missingSince ?? now),
  };
}

export type LeaseState =
  { expired: false; expiresAt: number; durationMs: number } | { expired: true; message: string };

/**
 * Pure: whether the node's heartbeat has lapsed at `now` (ms, operator clock), given what the operator observed.
 * With a Lease, the node expires leaseDurationSeconds after the operator last saw a heartbeat. Without one, it
 * expires `missingLeaseGraceMs` after the operator first saw it without a Lease. A node the operator already
 * marked LeaseExpired stays so until this operator sees a heartbeat itself (after a restart, the old verdict
 * holds until the daemon shows a sign of life).
 */
export function leaseState(
  node: HypervisorNode,
  lease: Lease | undefined,
  observation: HeartbeatObservation,
  now: number,
  missingLeaseGraceMs: number,
): LeaseState {
  const name = node.metadata.name!;
  const ready = findCondition(node.status?.conditions, HYPERVISOR_NODE_CONDITIONS.Ready);
  const markedExpired = ready?.status === 'False' && ready.reason === LEASE_EXPIRED;
  if (!usableLease(lease)) {
    const expiresAt = (observation.missingSince ?? now) + missingLeaseGraceMs;
    return now < expiresAt && !(markedExpired && !observation.changed)
      ? { expired: false, expiresAt, durationMs: missingLeaseGraceMs }
      : { expired: true, message: `node ${name} has no heartbeat Lease` };
  }
  const durationMs = lease.spec.leaseDurationSeconds * 1000;
  const expiresAt = observation.since + durationMs;
  if (now < expiresAt && !(markedExpired && !observation.changed))
    return { expired: false, expiresAt, durationMs };
  const unseen = Math.max(0, Math.round((now - observation.since) / 1000));
  return {
    expired: true,
    message:
      `Lease ${lease.metadata.namespace}/${name} last renewed at ${lease.spec.renewTime} ` +
      `(duration ${lease.spec.leaseDurationSeconds} s); no renewal seen by the operator for ${unseen} s`,
  };
}

/** Whether the operator declared the node lost (Fenced=True): its guests are killed, its VMs may start elsewhere. */
export function isNodeLost(node: HypervisorNode | undefined): boolean {
  return findCondition(node?.status?.conditions, HYPERVISOR_NODE_CONDITIONS.Fenced)?.status === 'True';
}

/** Pure: the node's fence time in ms from its Lease's annotation; undefined when the node does not fence itself. */
export function fenceAfterMs(lease: Lease | undefined): number | undefined {
  const value = lease?.metadata.annotations?.[FENCE_AFTER_ANNOTATION];
  if (value === undefined || !/^\d{1,9}$/.test(value)) return undefined;
  const seconds = Number(value);
  return seconds > 0 ? seconds * 1000 : undefined;
}

export type NodeLoss =
  /** The node does not fence itself (or has no Lease): its VMs are never started elsewhere. */
  | { kind: 'unfenced' }
  /** Its guests may still run: look again at `at` (ms, operator clock). */
  | { kind: 'pending'; at: number }
  | { kind: 'lost'; message: string };

/**
 * Pure: whether an expired node is lost at `now` (ms, operator clock): the operator has seen no heartbeat for its
 * fence time plus `marginMs`. A node already marked Fenced stays lost until this operator sees a heartbeat (after a
 * restart its own count starts again, and must not lift a verdict that may already have moved VMs).
 */
export function nodeLoss(
  node: HypervisorNode,
  lease: Lease | undefined,
  observation: HeartbeatObservation,
  now: number,
  marginMs: number,
): NodeLoss {
  const fenced = findCondition(node.status?.conditions, HYPERVISOR_NODE_CONDITIONS.Fenced);
  const fenceMs = usableLease(lease) ? fenceAfterMs(lease) : undefined;
  if (fenced?.status === 'True' && !observation.changed) return { kind: 'lost', message: fenced.message };
  if (fenceMs === undefined) return { kind: 'unfenced' };
  const at = observation.since + fenceMs + marginMs;
  if (now < at) return { kind: 'pending', at };
  const unseen = Math.round((now - observation.since) / 1000);
  return {
    kind: 'lost',
    message:
      `no Lease renewal seen by the operator for ${unseen} s (since ${new Date(observation.since).toISOString()}, ` +
      `operator clock), more than the node's fence time (${fenceMs / 1000} s) plus the margin ` +
      `(${marginMs / 1000} s): its watchdog has killed its guests; VMs with nodeLossPolicy Restart start elsewhere`,
  };
}

/**
 * Pure: when to look again at a live node — just after it would expire, but never sooner than MIN_REQUEUE_MS
 * and never later than its duration (at most MAX_REQUEUE_MS), whatever the node wrote or the clock did.
 */
export function requeueDelay(state: { expiresAt: number; durationMs: number }, now: number): number {
  const ceiling = Math.max(MIN_REQUEUE_MS, Math.min(state.durationMs + AFTER_EXPIRY_MS, MAX_REQUEUE_MS));
  const wanted = state.expiresAt - now + AFTER_EXPIRY_MS;
  // NaN (a duration nobody could parse) falls back to the ceiling.
  return Number.isFinite(wanted) ? Math.min(Math.max(wanted, MIN_REQUEUE_MS), ceiling) : ceiling;
}

export class HypervisorNodeHealthReconciler {
  /**
   * Per node, what this operator saw and when. It lives in memory only: after an operator restart (or a new
   * leader), the first observation starts the clock, so every node is given one full lease duration (or the
   * missing-Lease grace) from then before it is declared NotReady — except one already marked LeaseExpired,
   * which stays NotReady until a heartbeat is seen.
   */
  private readonly observations = new Map<string, HeartbeatObservation>();

  constructor(private readonly options: HypervisorNodeHealthOptions) {}

  /** Lease → the key of the HypervisorNode of the same name. */
  readonly nodeKeyForLease = (lease: Lease): string[] =>
    lease.metadata.namespace === this.options.leaseNamespace ? [lease.metadata.name!] : [];

  readonly reconcile = async (
    request: ReconcileRequest,
    context: ReconcileContext,
  ): Promise<ReconcileResult> => {
    const node = this.options.nodes.get(request.key);
    if (!node) {
      this.observations.delete(request.key);
      return;
    }
    const now = this.options.now?.() ?? new Date();
    const lease = this.options.leases.get(`${this.options.leaseNamespace}/${request.name}`);
    const observation = observeHeartbeat(this.observations.get(request.key), node, lease, now.getTime());
    this.observations.set(request.key, observation);
    const state = leaseState(
      node,
      lease,
      observation,
      now.getTime(),
      this.options.missingLeaseGraceMs ?? 60_000,
    );
    const ready = findCondition(node.status?.conditions, HYPERVISOR_NODE_CONDITIONS.Ready);
    const fenced = findCondition(node.status?.conditions, HYPERVISOR_NODE_CONDITIONS.Fenced);
    const markedExpired = ready?.status === 'False' && ready.reason === LEASE_EXPIRED;
    if (state.expired) {
      const marginMs = this.options.nodeLossMarginMs ?? DEFAULT_NODE_LOSS_MARGIN_MS;
      const loss = nodeLoss(node, lease, observation, now.getTime(), marginMs);
      const updates: ConditionUpdate[] = [];
      if (!markedExpired) updates.push(readyCondition('False', LEASE_EXPIRED, state.message));
      if (loss.kind === 'lost' && fenced?.status !== 'True')
        updates.push({
          type: HYPERVISOR_NODE_CONDITIONS.Fenced,
          status: 'True',
          reason: FENCE_TIME_ELAPSED,
          message: loss.message,
        });
      if (updates.length > 0) await this.setConditions(node, updates, now);
      if (!markedExpired) {
        context.logger.warn({ node: request.name }, state.message);
        await this.options.events.record(node, 'Warning', 'NodeNotReady', state.message);
      }
      if (loss.kind === 'lost' && fenced?.status !== 'True') {
        context.logger.warn({ node: request.name }, loss.message);
        await this.options.events.record(node, 'Warning', 'NodeFenced', loss.message);
      }
      // Look again when the node would be lost; a renewal (a Lease or node event) comes first if there is one.
      if (loss.kind === 'pending')
        return {
          requeueAfterMs: requeueDelay({ expiresAt: loss.at, durationMs: MAX_REQUEUE_MS }, now.getTime()),
        };
      return;
    }
    // Only the operator's own verdicts are lifted here; a daemon reports its own readiness otherwise.
    const updates: ConditionUpdate[] = [];
    const message = 'the heartbeat Lease is being renewed again';
    if (markedExpired) updates.push(readyCondition('True', LEASE_RENEWED, message));
    if (fenced?.status === 'True')
      updates.push({
        type: HYPERVISOR_NODE_CONDITIONS.Fenced,
        status: 'False',
        reason: LEASE_RENEWED,
        message,
      });
    if (updates.length > 0) {
      await this.setConditions(node, updates, now);
      await this.options.events.record(node, 'Normal', 'NodeReady', message);
    }
    // Look again just after the heartbeat would lapse, unless a renewal (a Lease or node event) comes first.
    return { requeueAfterMs: requeueDelay(state, now.getTime()) };
  };

  private async setConditions(node: HypervisorNode, updates: ConditionUpdate[], now: Date): Promise<void> {
    let conditions = node.status?.conditions;
    for (const update of updates) conditions = setCondition(conditions, update, now);
    // Fenced=True is Stalled (NodeLost) for kstatus; lifted with it.
    const verdict = hypervisorNodeVerdict({ ...node.status, conditions });
    conditions = withKstatus(conditions, verdict, node.status?.observedGeneration, now);
    await this.options.client.replaceStatus(HypervisorNodes, {
      ...node,
      status: { ...node.status, conditions },
    });
  }
}

function readyCondition(status: 'True' | 'False', reason: string, message: string): ConditionUpdate {
  return { type: HYPERVISOR_NODE_CONDITIONS.Ready, status, reason, message };
}
