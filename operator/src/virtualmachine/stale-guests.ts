// Guests left behind on a node whose VM's ownership record names another node: a guest fenced on a node that was
// lost while its VM was restarted elsewhere (nodeLossPolicy Restart), or the stopped source of a migration. The VM
// reconciler only talks to the node its record names, so this reconciler, keyed by HypervisorNode, deletes them
// when the node is Ready (it looks again with each status heartbeat of the node). Guests that are down (Stopped,
// Failed) or paused are deleted once no Migration holds the VM: a paused guest of a VM recorded elsewhere is an
// incoming migration target or a source before its release, which belongs to the Migration while it runs (the VM
// is locked before its target is prepared, and released only after the hand-over's last step) and to nobody after
// it (e.g. a target the Migration could not abort because its node was not Ready). A running guest is never
// touched. The VM is read from the API before a delete: an informer that lags behind a move to this node, or
// behind a new Migration's lock, must not remove a guest that the record or a Migration still needs. A down guest
// whose VM is gone (deleted while its node was lost, or re-created under a new UID) is deleted too: it is found
// by its display name (namespace/name) and a fresh read.
import type { Logger } from 'pino';
import type { HypervisorNode, VirtualMachine } from '../../../crds/index.js';
import { VirtualMachines } from '../../../crds/index.js';
import type { KubeClient } from '../../../kube/client.js';
import { isNotFound } from '../../../kube/errors.js';
import type { EventRecorder } from '../../../kube/events.js';
import type { Guest__Output } from '../../../proto/index.js';
import type { DaemonClientPool } from '../daemon/client-pool.js';
import type { DaemonGuestClient } from '../daemon/guest-client.js';
import { isNodeReady } from '../placement/placement.js';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.js';
import type { Informer } from '../runtime/informer.js';

export interface StaleGuestOptions {
  client: KubeClient;
  pool: DaemonClientPool;
  nodes: Informer<HypervisorNode>;
  vms: Informer<VirtualMachine>;
  events: EventRecorder;
  stopTimeoutMs: number;
}

const LEFT_BEHIND: readonly Guest__Output['phase'][] = [
  'GUEST_PHASE_STOPPED',
  'GUEST_PHASE_FAILED',
  'GUEST_PHASE_PAUSED',
];

function isDown(guest: Guest__Output): boolean {
  return guest.phase === 'GUEST_PHASE_STOPPED' || guest.phase === 'GUEST_PHASE_FAILED';
}

/** Pure: whether `guest` on `node` is left behind: down or paused, its VM recorded on another node, no migration. */
export function isStaleGuest(guest: Guest__Output, node: string, vm: VirtualMachine | undefined): boolean {
  if (!LEFT_BEHIND.includes(guest.phase) || vm === undefined || vm.metadata.uid !== guest.spec?.uuid)
    return false;
  const owner = vm.status?.node;
  return (
    owner !== undefined && owner !== node && !vm.status?.activeMigration && vm.status?.phase !== 'Migrating'
  );
}

export class StaleGuestReconciler {
  constructor(private readonly options: StaleGuestOptions) {}

  readonly reconcile = async (
    request: ReconcileRequest,
    context: ReconcileContext,
  ): Promise<ReconcileResult> => {
    const node = this.options.nodes.get(request.key);
    if (!node || !isNodeReady(node)) return;
    const name = node.metadata.name!;
    const daemon = this.options.pool.guestClient(name, node.status!.endpoint!);
    const byUid = new Map(this.options.vms.list().map((vm) => [vm.metadata.uid, vm]));
    for (const guest of await daemon.listGuests()) {
      const cached = byUid.get(guest.spec?.uuid);
      if (cached === undefined && isDown(guest)) {
        await this.deleteIfOrphaned(daemon, guest, name, context.logger);
        continue;
      }
      if (!isStaleGuest(guest, name, cached)) continue;
      const vm = await this.fresh(cached!.metadata.name!, cached!.metadata.namespace);
      if (!isStaleGuest(guest, name, vm)) continue;
      await daemon.deleteGuest(guest.spec!.name, this.options.stopTimeoutMs);
      await this.deleted(vm!, guest, name, context.logger);
    }
  };

  /**
   * A down guest whose VM is gone (deleted while its node was lost, or re-created under a new UID): named by its
   * display name (namespace/name), it is deleted once a fresh read finds no VM of its UID there.
   */
  private async deleteIfOrphaned(
    daemon: DaemonGuestClient,
    guest: Guest__Output,
    node: string,
    logger: Logger,
  ): Promise<void> {
    const [namespace, vmName] = guest.spec?.displayName?.split('/') ?? [];
    if (!namespace || !vmName) return;
    const vm = await this.fresh(vmName, namespace);
    if (vm?.metadata.uid === guest.spec?.uuid) return;
    await daemon.deleteGuest(guest.spec!.name, this.options.stopTimeoutMs);
    logger.info(
      { guest: guest.spec!.name, displayName: guest.spec!.displayName, node },
      `deleted the ${guest.reason || guest.phase} guest left on ${node}: its VirtualMachine is gone`,
    );
  }

  private async fresh(name: string, namespace: string | undefined): Promise<VirtualMachine | undefined> {
    try {
      return await this.options.client.get<VirtualMachine>(VirtualMachines, name, namespace);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  private async deleted(
    vm: VirtualMachine,
    guest: Guest__Output,
    node: string,
    logger: Logger,
  ): Promise<void> {
    const message =
      `deleted the ${guest.reason || guest.phase} guest left on ${node}; the ownership record names ` +
      `${vm.status?.node} (epoch ${vm.status?.epoch})`;
    logger.info({ vm: vm.metadata.name, node }, message);
    await this.options.events.record(vm, 'Normal', 'StaleGuestDeleted', message);
  }
}
