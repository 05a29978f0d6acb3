// The Migration state machine, without I/O: admission (validation, target choice, concurrency limits), the
// mapping of the daemon's phases and outcomes onto Migration.status, the hand-over decision, phase timings and the
// progress write throttle. reconciler.ts, run.ts, sequence.ts, ownership.ts and status.ts do the I/O around these
// decisions.
import type {
  HypervisorNode,
  Migration,
  MigrationFailureReason,
  MigrationPhase,
  MigrationStatus,
  PhaseTiming,
  VirtualMachine,
} from '../../../crds/index.js';
import { isTerminalMigrationPhase, MIGRATION_PHASES, parseByteQuantity } from '../../../crds/index.js';
import type { MigrationOutcome__Output, WireMigrationPhase } from '../../../proto/index.js';
import {
  isNodeReady,
  isNodeSchedulable,
  placeVirtualMachine,
  usageByNode,
  type IncomingReservation,
} from '../placement/placement.js';

export interface ConcurrencyLimits {
  cluster: number;
  outboundPerNode: number;
  inboundPerNode: number;
}

export const DEFAULT_CONCURRENCY_LIMITS: ConcurrencyLimits = {
  cluster: 5,
  outboundPerNode: 2,
  inboundPerNode: 2,
};

/** Phases in which a migration holds a slot of the concurrency limits (it has a source and a target). */
export const ACTIVE_MIGRATION_PHASES: readonly MigrationPhase[] = MIGRATION_PHASES.filter(
  (phase) => phase !== 'Pending' && !isTerminalMigrationPhase(phase),
);

/** Phases before the daemons hold anything: deleting the Migration needs no daemon call. */
export const PRE_DAEMON_PHASES: readonly (MigrationPhase | undefined)[] = [undefined, 'Pending'];

/** Phases before the source started migrating: a failure there is a refusal (condition Scheduled=False). */
export const UNSTARTED_PHASES: readonly (MigrationPhase | undefined)[] = [...PRE_DAEMON_PHASES, 'Scheduling'];

export type WaitReason = 'ClusterLimit' | 'OutboundLimit' | 'InboundLimit';

export type Admission =
  | { kind: 'fail'; reason: MigrationFailureReason; message: string }
  | { kind: 'wait'; reason: WaitReason; message: string; source: string; target: string }
  | { kind: 'schedule'; source: string; target: string; message: string };

export interface AdmissionInput {
  migration: Migration;
  /** The VM as read from the API (undefined: it does not exist). */
  vm: VirtualMachine | undefined;
  nodes: readonly HypervisorNode[];
  vms: readonly VirtualMachine[];
  /** Every Migration in the cluster as last seen (this one included or not). */
  migrations: readonly Migration[];
  limits: ConcurrencyLimits;
}

const MiB = 1024 * 1024;

/** Older first: creation time, then name (creationTimestamp has whole seconds only). */
export function compareAge(a: Migration, b: Migration): number {
  const [ta, tb] = [a.metadata.creationTimestamp ?? '', b.metadata.creationTimestamp ?? ''];
  if (ta !== tb) return ta < tb ? -1 : 1;
  const [na, nb] = [a.metadata.name ?? '', b.metadata.name ?? ''];
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/** Whether the migration holds a concurrency slot. */
export function isActive(migration: Migration): boolean {
  const phase = migration.status?.phase;
  return phase !== undefined && ACTIVE_MIGRATION_PHASES.includes(phase);
}

function sameMigration(a: Migration, b: Migration): boolean {
  return a.metadata.uid === b.metadata.uid;
}

/**
 * What the migrations holding a slot reserve on their targets: the VM's CPUs and memory, until the
 * VM's record names the target (from then on the VM itself counts there).
 */
export function incomingReservations(
  migrations: readonly Migration[],
  vms: readonly VirtualMachine[],
): IncomingReservation[] {
  const reservations: IncomingReservation[] = [];
  for (const migration of migrations) {
    const target = migration.status?.targetNode;
    if (!target || !isActive(migration)) continue;
    const vm = vms.find(
      (v) =>
        v.metadata.namespace === migration.metadata.namespace && v.metadata.name === migration.spec.vmName,
    );
    if (vm && vm.status?.node !== target) reservations.push({ node: target, vm });
  }
  return reservations;
}

/**
 * Decides what a Pending Migration does next: fail with a reason, wait for a concurrency slot, or start scheduling
 * from `source` to `target`. Checks run in this order: VM, other migrations of the VM, target, capacity, limits.
 */
export function admit(input: AdmissionInput): Admission {
  const { migration, vm, nodes } = input;
  const vmName = migration.spec.vmName;
  if (!vm)
    return fail('VMNotFound', `VirtualMachine ${vmName} does not exist in ${migration.metadata.namespace}`);

  const sameVm = input.migrations.filter(
    (other) =>
      !sameMigration(other, migration) &&
      other.metadata.namespace === migration.metadata.namespace &&
      other.spec.vmName === vmName &&
      !isTerminalMigrationPhase(other.status?.phase),
  );
  const older = sameVm.find((other) => compareAge(other, migration) < 0 || isActive(other));
  if (older) return fail('AlreadyMigrating', `Migration ${older.metadata.name} of ${vmName} is not finished`);
  const active = vm.status?.activeMigration;
  if (active && active !== migration.metadata.name) {
    return fail('AlreadyMigrating', `VirtualMachine ${vmName} is being moved by Migration ${active}`);
  }

  const source = vm.status?.node;
  if (vm.status?.phase !== 'Running' || !source) {
    return fail(
      'VMNotRunning',
      `VirtualMachine ${vmName} is ${vm.status?.phase ?? 'not started'}, not Running`,
    );
  }
  const sourceNode = nodes.find((n) => n.metadata.name === source);
  const accelerator = sourceNode?.status?.accelerator;
  const others = input.migrations.filter((other) => !sameMigration(other, migration));
  const incoming = incomingReservations(others, input.vms);

  let target = migration.spec.targetNode;
  if (target) {
    const problem = checkTarget(vm, target, source, accelerator, nodes, input.vms, incoming);
    if (problem) return problem;
  } else {
    // Placement over the other nodes that run the source's accelerator; the VM's own node pin does not apply.
    const candidates = nodes.filter(
      (n) => n.metadata.name !== source && (!accelerator || n.status?.accelerator === accelerator),
    );
    const unpinned: VirtualMachine = {
      ...vm,
      spec: { ...vm.spec, placement: { nodeSelector: vm.spec.placement?.nodeSelector } },
    };
    const placed = placeVirtualMachine(unpinned, candidates, input.vms, incoming);
    if (placed.node === undefined) {
      const reason = placed.reason === 'InsufficientCapacity' ? 'InsufficientCapacity' : 'NoTargetAvailable';
      return fail(reason, `no target for ${vmName} besides ${source}: ${placed.message}`);
    }
    target = placed.node;
  }

  const running = others.filter(isActive);
  const { limits } = input;
  if (running.length >= limits.cluster) {
    return wait('ClusterLimit', `${running.length} migrations run cluster-wide (limit ${limits.cluster})`);
  }
  const outbound = running.filter((other) => other.status?.sourceNode === source).length;
  if (outbound >= limits.outboundPerNode) {
    return wait('OutboundLimit', `${outbound} migrations leave ${source} (limit ${limits.outboundPerNode})`);
  }
  const inbound = running.filter((other) => other.status?.targetNode === target).length;
  if (inbound >= limits.inboundPerNode) {
    return wait('InboundLimit', `${inbound} migrations enter ${target} (limit ${limits.inboundPerNode})`);
  }
  return { kind: 'schedule', source, target, message: `from ${source} to ${target}` };

  function wait(reason: WaitReason, message: string): Admission {
    return { kind: 'wait', reason, message: `waiting: ${message}`, source: source!, target: target! };
  }
}

function fail(reason: MigrationFailureReason, message: string): Admission {
  return { kind: 'fail', reason, message };
}

function checkTarget(
  vm: VirtualMachine,
  target: string,
  source: string,
  accelerator: string | undefined,
  nodes: readonly HypervisorNode[],
  vms: readonly VirtualMachine[],
  incoming: readonly IncomingReservation[],
): Admission | undefined {
  if (target === source)
    return fail('TargetIsSource', `VirtualMachine ${vm.metadata.name} already runs on ${target}`);
  const node = nodes.find((n) => n.metadata.name === target);
  if (!node) return fail('TargetNotFound', `HypervisorNode ${target} does not exist`);
  if (!isNodeReady(node)) return fail('TargetNotReady', `HypervisorNode ${target} is not Ready`);
  if (!isNodeSchedulable(node)) return fail('TargetNotReady', `HypervisorNode ${target} is cordoned`);
  if (accelerator && node.status?.accelerator !== accelerator) {
    return fail(
      'IncompatibleTarget',
      `${source} runs ${accelerator}, ${target} runs ${node.status?.accelerator ?? 'an unknown accelerator'}`,
    );
  }
  const used = usageByNode(vms, vm.metadata.uid, incoming).get(target);
  const allocatable = node.status?.allocatable;
  const freeCpu = (allocatable?.cpu ?? 0) - (used?.cpu ?? 0);
  const freeMemory = (allocatable ? parseByteQuantity(allocatable.memory) : 0) - (used?.memoryBytes ?? 0);
  const memory = parseByteQuantity(vm.spec.memory);
  if (freeCpu < vm.spec.cpu.cores || freeMemory < memory) {
    return fail(
      'InsufficientCapacity',
      `${target} has ${freeCpu} CPUs and ${Math.floor(freeMemory / MiB)} MiB free; ` +
        `${vm.metadata.name} needs ${vm.spec.cpu.cores} and ${Math.ceil(memory / MiB)} MiB`,
    );
  }
  return undefined;
}

const WIRE_PHASES: Partial<Record<WireMigrationPhase & string, MigrationPhase>> = {
  MIGRATION_PHASE_INITIALIZING: 'Initializing',
  MIGRATION_PHASE_COPYING: 'Copying',
  MIGRATION_PHASE_QUIESCING: 'Quiescing',
  MIGRATION_PHASE_FREEZING: 'Freezing',
  MIGRATION_PHASE_POST_COPY: 'PostCopy',
};

/** Whether a daemon phase ends the source's run (the outcome follows). */
export function isWireTerminal(phase: WireMigrationPhase): boolean {
  return ['MIGRATION_PHASE_COMPLETED', 'MIGRATION_PHASE_FAILED', 'MIGRATION_PHASE_ABORTED'].includes(
    String(phase),
  );
}

/** The Migration phase a daemon phase shows as; undefined for the daemon's terminal phases (the outcome decides). */
export function phaseFromWire(phase: WireMigrationPhase | string): MigrationPhase | undefined {
  return WIRE_PHASES[phase as keyof typeof WIRE_PHASES];
}

const FAILURE_BY_CAUSE: Record<string, MigrationFailureReason> = {
  CAUSE_CANCELLED: 'Cancelled',
  CAUSE_TIMEOUT: 'Timeout',
  CAUSE_STALLED: 'Stalled',
  CAUSE_CONNECTION: 'TransportFailed',
  CAUSE_SOURCE: 'SourceFailed',
};

/** Ends a migration as Failed (or Aborted, for 'Cancelled') with its reason; anything else thrown is retried. */
export class MigrationFailed extends Error {
  constructor(
    readonly reason: MigrationFailureReason,
    message: string,
    /** Nothing was started: cleaning up the target is best effort (its daemon reaps an unused incoming QEMU). */
    readonly nothingStarted = false,
  ) {
    super(message);
  }
}

/** Runs that may fail in a row before the source started before the Migration fails (about 2.5 min of retries). */
export const MAX_UNSTARTED_RUN_FAILURES = 6;
const RUN_RETRY_BASE_MS = 5_000;
const RUN_RETRY_MAX_MS = 5 * 60_000;

/** How long after its `failures`-th failure in a row a Migration's next run starts: 5 s, doubling, at most 5 min. */
export function runRetryDelayMs(failures: number): number {
  return Math.min(RUN_RETRY_MAX_MS, RUN_RETRY_BASE_MS * 2 ** Math.max(0, failures - 1));
}

/** The failure reason for a source outcome that is not COMPLETED, from the daemon's machine-readable cause. */
export function failureFromOutcome(
  outcome: MigrationOutcome__Output,
  cancelled: boolean,
): MigrationFailureReason {
  // A cancel is refused once post-copy runs: a post-copy that failed cost the guest its state, even when the
  // Migration was being deleted meanwhile.
  if (outcome.postCopy && outcome.result === 'RESULT_FAILED') return 'PostCopyFailed';
  if (cancelled || outcome.result === 'RESULT_ABORTED') return 'Cancelled';
  return FAILURE_BY_CAUSE[String(outcome.cause)] ?? 'SourceFailed';
}

/**
 * Annotation on a Migration counting how often its target was prepared afresh. The daemons know a migration by
 * an id (the Migration's UID, then `<uid>-<attempt>`); a prepared target keeps the id's token and cannot be
 * prepared again under the same id, so a fresh preparation needs a fresh id.
 */
export const ATTEMPT_ANNOTATION = 'tern.dev/daemon-attempt';

/** The preparation attempt the Migration records (0 when it records none). */
export function migrationAttempt(migration: Migration): number {
  const recorded = Number(migration.metadata.annotations?.[ATTEMPT_ANNOTATION] ?? 0);
  return Number.isSafeInteger(recorded) && recorded > 0 ? recorded : 0;
}

/** The daemons' id of a Migration's attempt. */
export function daemonMigrationId(uid: string, attempt: number): string {
  return attempt === 0 ? uid : `${uid}-${attempt}`;
}

export type RunStart =
  /** The source holds the migration: follow it to its outcome (cancelling it first if the Migration is deleted). */
  | { kind: 'follow' }
  /**
   * The source never started it: prepare the target and start the source. `freshAttempt`: the target already
   * holds this id, prepared by a run that is gone with its token; it is discarded and a new attempt (new id,
   * new token) prepared instead.
   */
  | { kind: 'initialize'; freshAttempt: boolean }
  /** Deleted before the source started: discard what the target holds, give the VM back, Aborted. */
  | { kind: 'cancel' }
  /**
   * The status says the source started, but the source has no record of it; or runs kept failing before the
   * source started (nothingStarted: what the target may hold is cleaned up as far as its daemon answers).
   */
  | { kind: 'fail'; reason: MigrationFailureReason; message: string; nothingStarted?: boolean };

/**
 * How a run starts, from Migration.status and the daemons' state (level-triggered: the same answer whichever
 * process asks, whatever happened to the run before). StartMigration is issued only after this said 'initialize',
 * that is while the source knows nothing of the migration, so no migration is ever started twice.
 */
export function decideRunStart(input: {
  phase: MigrationPhase | undefined;
  sourceKnows: boolean;
  targetKnows: boolean;
  cancelled: boolean;
  /** Runs of this Migration that failed in a row before this one, and the last one's error. */
  failedRuns?: number;
  lastFailure?: string;
}): RunStart {
  if (input.sourceKnows) return { kind: 'follow' };
  if (input.cancelled) return { kind: 'cancel' };
  if (input.phase === 'Scheduling' || input.phase === 'Initializing') {
    // The source knows nothing of it, so nothing runs anywhere yet: giving up here can never strand the guest.
    if ((input.failedRuns ?? 0) >= MAX_UNSTARTED_RUN_FAILURES) {
      return {
        kind: 'fail',
        reason: 'Internal',
        message: `gave up after ${input.failedRuns} failed attempts to start it; the last: ${input.lastFailure ?? 'unknown'}`,
        nothingStarted: true,
      };
    }
    return { kind: 'initialize', freshAttempt: input.targetKnows };
  }
  return {
    kind: 'fail',
    reason: 'SourceFailed',
    message: `the source daemon has no record of the migration although it reached ${input.phase}; the guest stays where the VM's record names it`,
  };
}

export type HandOver =
  /** Compare-and-swap the VM's record to the target, then ResumeTarget and ReleaseSource. */
  | { kind: 'commit' }
  /** The record already names the target (this hand-over's CAS happened before a restart): finish it. */
  | { kind: 'finish' }
  /** AbortIncoming on the target; ResumeSource if `resumeSource`. */
  | { kind: 'rollback'; resumeSource: boolean };

/** What to do once the source reported its outcome, given the VM's ownership record as read now. */
export function decideHandOver(
  completed: boolean,
  recordNode: string | undefined,
  source: string,
  target: string,
): HandOver {
  if (recordNode === target) return { kind: 'finish' };
  if (completed && recordNode === source) return { kind: 'commit' };
  return { kind: 'rollback', resumeSource: recordNode === source };
}

/**
 * Timings with `phase` entered at `at`: the running phase gets its duration, the new one its start. Re-entering
 * the current phase changes nothing. A terminal phase gets a start only.
 */
export function enterPhase(
  timings: readonly PhaseTiming[] | undefined,
  phase: MigrationPhase,
  at: Date,
): PhaseTiming[] {
  const list = (timings ?? []).map((t) => ({ ...t }));
  if (list.some((t) => t.phase === phase)) return list;
  const open = list.find((t) => t.durationMs === undefined && !isTerminalMigrationPhase(t.phase));
  if (open) open.durationMs = Math.max(0, at.getTime() - Date.parse(open.startedAt));
  list.push({ phase, startedAt: at.toISOString() });
  return list;
}

/** Timings with the running phase ended at `at` (the daemon's end of Freezing, before the hand-over). */
export function closePhase(timings: readonly PhaseTiming[] | undefined, at: Date): PhaseTiming[] {
  return (timings ?? []).map((t) =>
    t.durationMs === undefined && !isTerminalMigrationPhase(t.phase)
      ? { ...t, durationMs: Math.max(0, at.getTime() - Date.parse(t.startedAt)) }
      : { ...t },
  );
}

/** Whether a phase comes after another in the normal order (late or replayed events never move a phase back). */
export function isLaterPhase(next: MigrationPhase, current: MigrationPhase | undefined): boolean {
  // The CRD lists the phases in order, the failure phases after Succeeded.
  const order = MIGRATION_PHASES.slice(0, MIGRATION_PHASES.indexOf('Succeeded') + 1);
  if (current === undefined) return true;
  if (isTerminalMigrationPhase(current)) return false;
  if (isTerminalMigrationPhase(next)) return true;
  return order.indexOf(next) > order.indexOf(current);
}

/** Status fields a phase change sets; the caller adds conditions. */
export function statusWithPhase(status: MigrationStatus, phase: MigrationPhase, at: Date): MigrationStatus {
  return { ...status, phase, phaseTimings: enterPhase(status.phaseTimings, phase, at) };
}

/**
 * At most one progress write per `intervalMs`; the latest progress is kept and flushed by the next allowed
 * write (phase changes are written at once and carry the latest progress with them).
 */
export class ProgressThrottle {
  private lastWriteMs = -Infinity;

  constructor(private readonly intervalMs: number) {}

  /** Whether a progress write may happen at `nowMs`; if so the slot is taken. */
  take(nowMs: number): boolean {
    if (nowMs - this.lastWriteMs < this.intervalMs) return false;
    this.lastWriteMs = nowMs;
    return true;
  }

  /** Milliseconds until the next write is allowed. */
  delayMs(nowMs: number): number {
    return Math.max(0, this.intervalMs - (nowMs - this.lastWriteMs));
  }

  /** Counts an unthrottled write (a phase change) as the last write. */
  wrote(nowMs: number): void {
    this.lastWriteMs = nowMs;
  }
}
