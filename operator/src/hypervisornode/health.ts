// HypervisorNode health from the daemon's heartbeat: each daemon renews a Lease named after its node (in the
// node-lease namespace). When renewTime (or the later status.heartbeatTime) + leaseDurationSeconds has passed, the node gets Ready=False/LeaseExpired
// and the VirtualMachine reconciler reports its VMs as Unknown — and never starts them elsewhere, since the guest
// may well still run there. When the Lease is renewed again, Ready returns to True (LeaseRenewed) and the VMs to
// their real phase. The comparison uses the operator's clock against the daemon's renewTime: clocks are assumed to
// be NTP-synchronised to well under a lease duration.
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

export interface HypervisorNodeHealthOptions {
  client: KubeClient;
  nodes: Informer<HypervisorNode>;
  /** Leases in the node-lease namespace. */
  leases: Informer<Lease>;
  leaseNamespace: string;
  events: EventRecorder;
  /** A node without a Lease is considered expired this long after its creation. */
  missingLeaseGraceMs?: number;
  now?: () => Date;
}

export type LeaseState = { expired: false; expiresAt: number } | { expired: true; message: string };

/** Pure: whether the node's heartbeat has lapsed at `now` (ms). */
export function leaseState(
  node: HypervisorNode,
  lease: Lease | undefined,
  now: number,
  missingLeaseGraceMs: number,
): LeaseState {
  const name = node.metadata.name!;
  if (!lease?.spec?.renewTime || !lease.spec.leaseDurationSeconds) {
    const since = Date.parse(node.metadata.creationTimestamp ?? '') || now;
    const expiresAt = since + missingLeaseGraceMs;
    return now < expiresAt
      ? { expired: false, expiresAt }
      : { expired: true, message: `node ${name} has no heartbeat Lease` };
  }
  // A daemon that just (re)started may write its status before it renews its Lease: its status heartbeat counts
  // as a sign of life too, so the node does not flap to NotReady in between.
  const renewed = Math.max(
    Date.parse(lease.spec.renewTime),
    Date.parse(node.status?.heartbeatTime ?? '') || 0,
  );
  const expiresAt = renewed + lease.spec.leaseDurationSeconds * 1000;
  return now < expiresAt
    ? { expired: false, expiresAt }
    : {
        expired: true,
        message: `Lease ${lease.metadata.namespace}/${name} last renewed at ${lease.spec.renewTime} (duration ${lease.spec.leaseDurationSeconds} s)`,
      };
}

export class HypervisorNodeHealthReconciler {
  constructor(private readonly options: HypervisorNodeHealthOptions) {}

  /** Lease → the key of the HypervisorNode of the same name. */
  readonly nodeKeyForLease = (lease: Lease): string[] =>
    lease.metadata.namespace === this.options.leaseNamespace ? [lease.metadata.name!] : [];

  readonly reconcile = async (
    request: ReconcileRequest,
    context: ReconcileContext,
  ): Promise<ReconcileResult> => {
    const node = this.options.nodes.get(request.key);
    if (!node) return;
    const now = this.options.now?.() ?? new Date();
    const lease = this.options.leases.get(`${this.options.leaseNamespace}/${request.name}`);
    const state = leaseState(node, lease, now.getTime(), this.options.missingLeaseGraceMs ?? 60_000);
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
    // Look again just after the Lease would expire, unless a renewal (a Lease event) comes first.
    return { requeueAfterMs: Math.max(0, state.expiresAt - now.getTime()) + 100 };
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
