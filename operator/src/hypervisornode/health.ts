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
import type { HypervisorNode } from '../../../crds/index.js';
import { HYPERVISOR_NODE_CONDITIONS } from '../../../crds/index.js';
import { findCondition, setCondition } from '../../../kube/conditions.js';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.js';
import type { Informer } from '../runtime/informer.js';
import type { Lease } from '../runtime/leader.js';
import type { KubeClient } from '../../../kube/client.js';
import type { EventRecorder } from '../../../kube/events.js';
import { HypervisorNodes } from '../../../crds/index.js';

export const LEASE_EXPIRED = 'LeaseExpired';
export const LEASE_RENEWED = 'LeaseRenewed';

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
    if (state.expired) {
      if (ready?.status === 'False' && ready.reason === LEASE_EXPIRED) return;
      await this.setReady(node, 'False', LEASE_EXPIRED, state.message, now);
      context.logger.warn({ node: request.name }, state.message);
      await this.options.events.record(node, 'Warning', 'NodeNotReady', state.message);
      return;
    }
    // Only the operator's own verdict is lifted here; a daemon reports its own readiness otherwise.
    if (ready?.status === 'False' && ready.reason === LEASE_EXPIRED) {
      const message = 'the heartbeat Lease is being renewed again';
      await this.setReady(node, 'True', LEASE_RENEWED, message, now);
      await this.options.events.record(node, 'Normal', 'NodeReady', message);
    }
    // Look again just after the heartbeat would lapse, unless a renewal (a Lease or node event) comes first.
    return { requeueAfterMs: requeueDelay(state, now.getTime()) };
  };

  private async setReady(
    node: HypervisorNode,
    status: 'True' | 'False',
    reason: string,
    message: string,
    now: Date,
  ): Promise<void> {
    const conditions = setCondition(
      node.status?.conditions,
      { type: HYPERVISOR_NODE_CONDITIONS.Ready, status, reason, message },
      now,
    );
    await this.options.client.replaceStatus(HypervisorNodes, {
      ...node,
      status: { ...node.status, conditions },
    });
  }
}
