// kstatus's conditions on every Tern kind (docs/gitops.md): Reconciling (the operator still acts on the spec;
// kstatus InProgress) and Stalled (the spec cannot be reached without someone acting; kstatus Failed), derived
// from each kind's status so that every writer of a status sets them the same way. Abnormal-true: a condition
// that does not hold is removed, never written False. Pure; the reconcilers write the result.
import type {
  Condition,
  HypervisorNodeStatus,
  MigrationStatus,
  VirtualMachineSpec,
  VirtualMachineStatus,
} from '../../../crds/index.js';
import {
  HYPERVISOR_NODE_CONDITIONS,
  KSTATUS_CONDITIONS,
  RESTART_REQUIRED_CONDITION,
} from '../../../crds/index.js';
import { findCondition, removeCondition, setCondition } from '../../../kube/conditions.js';

export interface Verdict {
  reason: string;
  message: string;
}

/** What kstatus should see: at most one of reconciling and stalled. */
export interface KstatusVerdict {
  reconciling?: Verdict;
  stalled?: Verdict;
}

/** `conditions` with Reconciling and Stalled set from `verdict` (stamped with `generation`), or removed. */
export function withKstatus(
  conditions: readonly Condition[] | undefined,
  verdict: KstatusVerdict,
  generation: number | undefined,
  now: Date = new Date(),
): Condition[] {
  let list = [...(conditions ?? [])];
  for (const [type, value] of [
    [KSTATUS_CONDITIONS.Reconciling, verdict.reconciling],
    [KSTATUS_CONDITIONS.Stalled, verdict.stalled],
  ] as const) {
    list = value
      ? setCondition(list, { type, status: 'True', ...value, observedGeneration: generation }, now)
      : removeCondition(list, type);
  }
  return list;
}

function verdictOf(condition: Condition | undefined, fallback: string, message: string): Verdict {
  return { reason: condition?.reason ?? fallback, message: condition?.message || message };
}

/**
 * A VirtualMachine: at rest when its guest runs with the spec's cpu and memory, or when it is stopped as
 * spec.running asks; Stalled when it is down against its spec (Failed, or powered off with restartPolicy Never)
 * or waits for a lost node (nodeLossPolicy Wait); Reconciling otherwise, with the Ready condition's reason, or
 * Migrating, or RestartRequired.
 */
export function virtualMachineVerdict(
  spec: VirtualMachineSpec,
  status: VirtualMachineStatus,
): KstatusVerdict {
  const ready = findCondition(status.conditions, KSTATUS_CONDITIONS.Ready);
  const phase = status.phase ?? 'Pending';
  switch (phase) {
    case 'Running': {
      if (ready?.status !== 'True')
        return { reconciling: verdictOf(ready, 'GuestPaused', 'the guest is paused') };
      const restart = findCondition(status.conditions, RESTART_REQUIRED_CONDITION);
      return restart?.status === 'True'
        ? { reconciling: { reason: 'RestartRequired', message: restart.message } }
        : {};
    }
    case 'Migrating':
      return {
        reconciling: {
          reason: 'Migrating',
          message: `Migration ${status.activeMigration ?? ''} moves the guest from ${status.node ?? 'its node'}`,
        },
      };
    case 'Stopped':
      return spec.running ? { stalled: verdictOf(ready, 'GuestPoweredOff', 'the guest is stopped') } : {};
    case 'Failed':
      return { stalled: verdictOf(ready, 'GuestFailed', 'the guest failed') };
    case 'Unknown': {
      const lost = findCondition(status.conditions, 'NodeLost');
      if (lost?.status === 'True' && lost.reason === 'WaitingForNode') {
        return { stalled: { reason: 'NodeLost', message: lost.message } };
      }
      return { reconciling: verdictOf(ready, 'NodeNotReady', `node ${status.node ?? ''} is not ready`) };
    }
    default:
      return { reconciling: verdictOf(ready, phase, `the VM is ${phase.toLowerCase()}`) };
  }
}

/**
 * The VM's conditions with Reconciling and Stalled from virtualMachineVerdict. A VM stopped as spec.running asks
 * has no Ready condition: it is where its spec wants it, and a Ready=False would read as "not yet" to kstatus.
 */
export function virtualMachineConditions(
  spec: VirtualMachineSpec,
  status: VirtualMachineStatus,
  generation: number | undefined,
  now?: Date,
): Condition[] {
  let conditions = withKstatus(status.conditions, virtualMachineVerdict(spec, status), generation, now);
  if (status.phase === 'Stopped' && !spec.running) {
    conditions = removeCondition(conditions, KSTATUS_CONDITIONS.Ready);
  }
  return conditions;
}

/**
 * A Migration: Ready=True once Succeeded; Stalled when Failed or Aborted (the failure reason: it will not move the
 * VM without a new Migration); Reconciling while it runs (the phase; Pending: what it waits for).
 */
export function migrationConditions(
  status: MigrationStatus,
  generation: number | undefined,
  now: Date = new Date(),
): Condition[] {
  const phase = status.phase ?? 'Pending';
  const completed = findCondition(status.conditions, 'Completed');
  const message = completed?.message || status.message || `the Migration is ${phase}`;
  let verdict: KstatusVerdict = {};
  let ready: Verdict & { status: 'True' | 'False' };
  if (phase === 'Succeeded') {
    ready = { status: 'True', reason: 'Succeeded', message };
  } else if (phase === 'Failed' || phase === 'Aborted') {
    const reason = status.failureReason ?? phase;
    ready = { status: 'False', reason, message };
    verdict = { stalled: { reason, message } };
  } else {
    const waiting = findCondition(status.conditions, 'Scheduled');
    const reason = phase === 'Pending' && waiting?.status === 'False' ? waiting.reason : phase;
    ready = { status: 'False', reason: phase, message };
    verdict = { reconciling: { reason, message } };
  }
  const conditions = setCondition(
    status.conditions,
    { type: KSTATUS_CONDITIONS.Ready, ...ready, observedGeneration: generation },
    now,
  );
  return withKstatus(conditions, verdict, generation, now);
}

/**
 * A HypervisorNode: Stalled when it is lost (Fenced) or its drain is blocked; Reconciling while it is being
 * evacuated. Its Ready condition is the daemon's (and the health check's) and is left alone.
 */
export function hypervisorNodeVerdict(status: HypervisorNodeStatus): KstatusVerdict {
  const fenced = findCondition(status.conditions, HYPERVISOR_NODE_CONDITIONS.Fenced);
  if (fenced?.status === 'True') return { stalled: { reason: 'NodeLost', message: fenced.message } };
  const evacuation = status.evacuation;
  const message =
    evacuation?.message || `${evacuation?.remaining ?? 0} of ${evacuation?.total ?? 0} VMs left`;
  if (evacuation?.phase === 'Blocked') return { stalled: { reason: 'EvacuationBlocked', message } };
  if (evacuation?.phase === 'Evacuating') return { reconciling: { reason: 'Evacuating', message } };
  return {};
}
