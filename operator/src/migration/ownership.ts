// The VM's side of a migration, written through its status subresource (compare-and-swap on resourceVersion):
// lockVm hands the VM to the Migration (phase Migrating, activeMigration: the VM reconciler leaves it alone),
// ownershipRecord is the hand-over's record (status.node/epoch: the node that may run the guest), and releaseVm
// gives the VM back to the VM reconciler with lastMigration. docs/architecture.md "The hand-over rule": the target
// resumes only after the record names it; after a failure the source resumes only while the record names it.
import type { Logger } from 'pino';
import type { Migration, VirtualMachine, VirtualMachineStatus } from '../../../crds/index.js';
import { retryOnConflict } from '../runtime/conflict.js';
import type { KubeClient } from '../../../kube/client.js';
import { isNotFound } from '../../../kube/errors.js';
import type { EventRecorder } from '../../../kube/events.js';
import { isBeingDeleted, metaTime } from '../../../kube/objects.js';
import { ownershipMovedTo, VirtualMachines } from '../../../crds/index.js';
import { virtualMachineConditions } from '../kstatus/conditions.js';
import type { OwnershipRecord } from './sequence.js';
import { MigrationFailed } from './state.js';
import { CAS_RETRIES } from './status.js';

export interface VmOwnershipOptions {
  client: KubeClient;
  events: EventRecorder;
}

export class VmOwnership {
  constructor(private readonly options: VmOwnershipOptions) {}

  /** The Migration's VM as stored now, or undefined when it is gone. */
  async getVm(migration: Migration): Promise<VirtualMachine | undefined> {
    try {
      return await this.options.client.get<VirtualMachine>(
        VirtualMachines,
        migration.spec.vmName,
        migration.metadata.namespace,
      );
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Marks the VM as being moved by this Migration (compare-and-swap); refuses when it is no longer movable. */
  async lockVm(migration: Migration): Promise<VirtualMachine> {
    const name = migration.metadata.name!;
    return retryOnConflict(CAS_RETRIES, async () => {
      const vm = await this.getVm(migration);
      if (!vm) throw new MigrationFailed('VMNotFound', `VirtualMachine ${migration.spec.vmName} is gone`);
      if (isBeingDeleted(vm)) {
        throw new MigrationFailed('Cancelled', `VirtualMachine ${vm.metadata.name} is being deleted`);
      }
      const status = vm.status ?? {};
      if (status.activeMigration === name && status.phase === 'Migrating') return vm;
      if (status.activeMigration && status.activeMigration !== name) {
        throw new MigrationFailed('AlreadyMigrating', `Migration ${status.activeMigration} moves the VM`);
      }
      if (status.phase !== 'Running' || status.node !== migration.status?.sourceNode) {
        throw new MigrationFailed(
          'VMNotRunning',
          `VirtualMachine ${vm.metadata.name} is ${status.phase} on ${status.node ?? 'no node'}`,
        );
      }
      const migrating: VirtualMachineStatus = { ...status, phase: 'Migrating', activeMigration: name };
      const locked = await this.options.client.replaceStatus<VirtualMachine>(VirtualMachines, {
        ...vm,
        status: { ...migrating, conditions: vmConditions(vm, migrating) },
      });
      await this.options.events.record(
        locked,
        'Normal',
        'Migrating',
        `Migration ${name}: ${status.node} → ${migration.status?.targetNode}`,
      );
      return locked;
    });
  }

  /**
   * The VM's status.node/epoch as the hand-over's ownership record. compareAndSwap writes node = target and epoch+1
   * against the VM as owner() last read it (resourceVersion precondition). A write that is not about ownership (a
   * label, a condition) also bumps resourceVersion: it reads and retries while the record still names `from`;
   * once the record changed, it returns what it names and the hand-over decides from that. readAhead() reads the
   * VM now for a hand-over to come (ownerReadAhead: the swap then starts from that read and, when nothing wrote
   * the VM meanwhile, costs one write on the switchover's path; a read that failed is simply not in hand).
   */
  ownershipRecord(migration: Migration, logger: Logger): OwnershipRecord & { readAhead(): void } {
    let vm: VirtualMachine | undefined;
    let ahead: Promise<VirtualMachine | undefined> | undefined;
    return {
      owner: async () => {
        vm = await this.getVm(migration);
        return vm?.status?.node;
      },
      readAhead: () => {
        ahead ??= this.getVm(migration).catch((err: unknown) => {
          logger.info({ err }, 'the ownership record could not be read ahead; it is read at the hand-over');
          return undefined;
        });
      },
      ownerReadAhead: async () => {
        const read = await ahead;
        ahead = undefined;
        if (read === undefined) return undefined;
        vm = read;
        return read.status?.node;
      },
      compareAndSwap: (from, to) =>
        retryOnConflict(CAS_RETRIES, async (attempt) => {
          if (attempt > 0 || vm === undefined) vm = await this.getVm(migration);
          if (!vm || vm.status?.node !== from) return vm?.status?.node;
          vm = await this.options.client.replaceStatus<VirtualMachine>(VirtualMachines, {
            ...vm,
            status: { ...vm.status, ...ownershipMovedTo(vm.status, to) },
          });
          logger.info({ epoch: vm.status?.epoch, from, to }, `ownership moved to ${to}`);
          return vm.status?.node;
        }),
      epoch: () => vm?.status?.epoch,
    };
  }

  /** An Event about the Migration's VM (nothing when the VM is gone). */
  async recordEvent(
    migration: Migration,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    const vm = await this.getVm(migration);
    if (vm) await this.options.events.record(vm, type, reason, message);
  }

  /** Gives the VM back to the VM reconciler (Running on whatever node its record names) with lastMigration. */
  async releaseVm(
    migration: Migration,
    result: 'Succeeded' | 'Failed' | 'Aborted',
    downtimeMs?: number,
  ): Promise<void> {
    const name = migration.metadata.name!;
    return retryOnConflict(CAS_RETRIES, async () => {
      const vm = await this.getVm(migration);
      if (!vm || vm.status?.activeMigration !== name) return;
      const status: VirtualMachineStatus = {
        ...vm.status,
        phase: 'Running',
        lastMigration: {
          name,
          sourceNode: migration.status!.sourceNode!,
          targetNode: migration.status?.targetNode,
          result,
          downtimeMs,
          finishedAt: metaTime(new Date()),
        },
      };
      delete status.activeMigration;
      if (downtimeMs === undefined) delete status.lastMigration!.downtimeMs;
      status.conditions = vmConditions(vm, status);
      const updated = await this.options.client.replaceStatus<VirtualMachine>(VirtualMachines, {
        ...vm,
        status,
      });
      await this.options.events.record(
        updated,
        result === 'Succeeded' ? 'Normal' : 'Warning',
        result === 'Succeeded' ? 'Migrated' : `Migration${result}`,
        `Migration ${name} ${result.toLowerCase()}; the guest runs on ${status.node} (epoch ${status.epoch})`,
      );
    });
  }
}

/** The VM's conditions for kstatus after a status change here (the generation the VM reconciler last observed). */
function vmConditions(vm: VirtualMachine, status: VirtualMachineStatus) {
  return virtualMachineConditions(vm.spec, status, status.observedGeneration);
}
