// A Migration whose source or target node is lost (Fenced=True: the operator has seen no Lease renewal for the
// node's fence time plus its margin, so the node's watchdog has killed its guests) ends here, Failed with reason
// NodeLost, and gives the VM back to the VM reconciler, whose nodeLossPolicy then applies if the VM's record names
// the lost node. Runs cannot end such a Migration themselves: they need both daemons. Before the VM is released,
// the surviving node is brought in line with the ownership record (docs/architecture.md "The hand-over rule"):
// - the record names the lost source: the target is aborted (it never ran the guest);
// - the record names the surviving source (the target was lost before the swap): the source is cancelled if it
//   still copies and resumed if the guest is paused there;
// - the record names the lost target (it was lost after the swap): the target may have resumed the guest before it
//   died, so the paused source must never resume; it is released, and the VM's nodeLossPolicy decides;
// - the record names the surviving target (the source was lost after the swap): the target resumes the guest.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { HypervisorNode, Migration } from '../../../crds/index.js';
import { isGrpcError } from '../../../proto/index.js';
import { isNodeLost } from '../hypervisornode/health.js';
import type { MigrationDaemonClient } from '../daemon/migration-client.js';
import type { VmOwnership } from './ownership.js';
import { cancelOnSource } from './sequence.js';
import { daemonMigrationId, migrationAttempt } from './state.js';
import type { MigrationStatusWriter } from './status.js';

/** The Migration's nodes that are lost, source first. */
export function lostNodesOf(
  migration: Migration,
  node: (name: string) => HypervisorNode | undefined,
): string[] {
  const { sourceNode, targetNode } = migration.status ?? {};
  return [sourceNode, targetNode].filter((name): name is string => !!name && isNodeLost(node(name)));
}

export interface NodeLossContext {
  migration: Migration;
  lost: string[];
  /** The Migration API of a node of this migration that is Ready, undefined for a lost or unreachable one. */
  daemon: (node: string) => MigrationDaemonClient | undefined;
  vms: VmOwnership;
  status: MigrationStatusWriter;
  logger: Logger;
}

/** Ends the Migration Failed/NodeLost after aligning the surviving node with the record; throws to be retried. */
export async function endOnNodeLoss(context: NodeLossContext): Promise<void> {
  const { migration, lost, logger } = context;
  const { sourceNode, targetNode } = migration.status as { sourceNode: string; targetNode: string };
  const uid = migration.metadata.uid!;
  const id = daemonMigrationId(uid, migrationAttempt(migration));
  const sourceLost = lost.includes(sourceNode);
  const targetLost = lost.includes(targetNode);
  const record = context.vms.ownershipRecord(migration, logger);
  const owner = await record.owner();
  const vm = await context.vms.getVm(migration);
  if (vm !== undefined && vm.status?.activeMigration !== migration.metadata.name) {
    // An earlier pass released the VM and could not write the end: the VM is no longer this Migration's to align.
    await context.status.finish(migration, 'Failed', 'NodeLost', `node ${lost.join(' and ')} lost`);
    return;
  }
  let done: string;
  if (!sourceLost && owner === sourceNode) {
    // The target was lost before the swap: the guest is the source's; stop the copy, resume it if paused.
    const source = mustReach(context, sourceNode);
    // A source that knows nothing of the migration (it never started) has nothing to cancel.
    if ((await source.getMigration(id)) !== undefined)
      await cancelOnSource(source, id, `target node ${targetNode} lost`, logger);
    let state = await source.getMigration(id);
    if (state?.stage === 'MIGRATION_STAGE_RUNNING') throw new Error('the source still migrates; waiting');
    if (state?.stage === 'MIGRATION_STAGE_FINISHED')
      state = await source.resumeSource(id, sourceNode, record.epoch());
    done =
      state?.stage === 'MIGRATION_STAGE_SOURCE_LOST'
        ? `the guest's QEMU on ${sourceNode} is gone (${state.message}): its restartPolicy decides whether it starts again`
        : `the guest runs on ${sourceNode}`;
  } else if (!sourceLost && owner === targetNode) {
    // The target was lost after the swap. It may have resumed the guest before it died (its disk writes are then
    // newer than the source's paused memory), so the source must not resume: its paused copy is released, and the
    // VM's nodeLossPolicy decides (a fresh start from the disks elsewhere, or waiting for the target).
    const source = mustReach(context, sourceNode);
    const state = await source.getMigration(id);
    if (state?.stage === 'MIGRATION_STAGE_RUNNING') throw new Error('the source still migrates; waiting');
    // Released without removing its local disks: if the target never ran the guest, they are the only copy.
    if (state?.stage === 'MIGRATION_STAGE_FINISHED')
      await source.releaseSource(id, targetNode, record.epoch());
    done = `the VM stays with ${targetNode}; its nodeLossPolicy decides whether it starts elsewhere`;
  } else if (!targetLost && owner === targetNode) {
    // Lost after the swap: the record names the target, which may run the guest (the hand-over rule).
    done = await resumeSurvivingTarget(mustReach(context, targetNode), id, targetNode, record.epoch());
  } else {
    if (!targetLost) {
      // The target never runs without the record: abort every attempt it may hold.
      const target = mustReach(context, targetNode);
      for (let attempt = 0; attempt <= migrationAttempt(migration); attempt++)
        await target.abortIncoming(daemonMigrationId(uid, attempt));
    }
    done = owner
      ? `the VM stays with ${owner}; its nodeLossPolicy decides whether it starts elsewhere`
      : 'the VM has no ownership record';
  }
  const message = `node ${lost.join(' and ')} lost (no Lease renewal for its fence time plus the margin): ${done}`;
  logger.warn({ lost, owner }, message);
  await context.vms.releaseVm(migration, 'Failed');
  await context.status.finish(migration, 'Failed', 'NodeLost', message);
}

/**
 * ResumeTarget on the surviving target; one that cannot run the guest any more (its QEMU died after the swap, or it
 * no longer knows the migration) is aborted instead, and the record stays with it: the VM's restartPolicy starts
 * the guest again there, as the source (lost) cannot take it back.
 */
async function resumeSurvivingTarget(
  target: MigrationDaemonClient,
  id: string,
  targetNode: string,
  epoch: number | undefined,
): Promise<string> {
  try {
    await target.resumeTarget(id, targetNode, epoch);
    return `the guest runs on ${targetNode}, which the ownership record names`;
  } catch (error) {
    if (!isGrpcError(error, grpc.status.FAILED_PRECONDITION) && !isGrpcError(error, grpc.status.NOT_FOUND)) {
      throw error;
    }
    // The guest starts again there, from the local disks the migration created: they stay.
    await target.abortIncoming(id, { keepLocalDisks: true }).catch((abortError: unknown) => {
      if (!isGrpcError(abortError, grpc.status.NOT_FOUND)) throw abortError;
    });
    return (
      `${targetNode} could not resume the guest (${error.details}); the record stays with it and the VM's ` +
      'restartPolicy decides whether it starts again there'
    );
  }
}

function mustReach(context: NodeLossContext, node: string): MigrationDaemonClient {
  const daemon = context.daemon(node);
  if (daemon === undefined) throw new Error(`${node} is not Ready; waiting for it to end the migration`);
  return daemon;
}
