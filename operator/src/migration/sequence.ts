// The daemon side of one migration: the calls the operator makes to the source's and the target's Migration APIs,
// in order — PrepareIncoming on the target, StartMigration on the source, WatchMigration until the outcome, then
// the hand-over. The operator's runs (run.ts) call these with the VM's status as the ownership record
// (ownership.ts); the daemon integration tests and the migration benchmark call the same functions with an
// in-memory record (test/harness/migration-driver.ts), so they exercise exactly this sequence.
//
// Hand-over (docs/architecture.md "The hand-over rule"): the source's outcome COMPLETED leaves the guest loaded and
// paused on the target. One compare-and-swap of the ownership record (source→target) decides the owner; only then
// is the target resumed and the source released. Otherwise the target is aborted, and the source resumed only
// while the record still names it.
//
// Post-copy (switchToTargetInPostCopy): once the source switched to post-copy and the target loaded the device
// state, both QEMUs are paused and neither can be given up for the other; the same compare-and-swap moves the record
// and the target runs the guest at once, while the remaining pages still stream. The hand-over after the source's
// outcome then finds the record with the target: COMPLETED releases the source; a post-copy that failed stops the
// target's guest too (endPostCopyOnTarget), which starts again there by the VM's restartPolicy.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  isGrpcError,
  wallClockUs,
  type Guest__Output,
  type MigrationEvent__Output,
  type MigrationOutcome__Output,
  type MigrationState__Output,
} from '../../../proto/index.js';
import type { MigrationDaemonClient, PrepareIncoming, StartMigration } from '../daemon/migration-client.js';
import { MigrationFailed, decideHandOver } from './state.js';

const WATCH_RETRIES = 5;
const WATCH_RETRY_MS = 1_000;

/** The two daemons of one migration, by their Migration API. */
export interface MigrationDaemons {
  source: MigrationDaemonClient;
  target: MigrationDaemonClient;
}

/**
 * Which node may run the guest. The operator's is the VM's status.node/epoch in the Kubernetes API; the daemon
 * tests' an in-memory map.
 */
export interface OwnershipRecord {
  /** The node the record names now (undefined: there is no record, e.g. the VM is gone). */
  owner(): Promise<string | undefined>;
  /**
   * Moves the record from `from` to `to` if it still names `from` (compare-and-swap against what owner() read);
   * returns the node it names afterwards: `to` when it moved.
   */
  compareAndSwap(from: string, to: string): Promise<string | undefined>;
  /**
   * The record's epoch as owner() or compareAndSwap() last saw it, shown to the daemons on the hand-over calls
   * (undefined: not known, nothing checked).
   */
  epoch(): number | undefined;
  /**
   * The node a read made ahead of the hand-over found (the operator reads while QEMU's downtime runs, so that the
   * switchover's critical path holds the swap only); undefined when no such read is in hand. Used once, and only
   * to start a compare-and-swap from: see handOver.
   */
  ownerReadAhead?(): Promise<string | undefined>;
}

/** Where the source sends the memory, and the local disks ('' when the guest has none). */
export interface PreparedTarget {
  dataEndpoint: string;
  diskEndpoint: string;
}

/** PrepareIncoming on the target; returns its endpoints. A refusal fails the migration. */
export async function prepareTarget(
  target: MigrationDaemonClient,
  request: PrepareIncoming,
): Promise<PreparedTarget> {
  try {
    const { dataEndpoint, diskEndpoint } = await target.prepareIncoming(request);
    return { dataEndpoint, diskEndpoint };
  } catch (error) {
    if (isGrpcError(error, grpc.status.FAILED_PRECONDITION))
      throw new MigrationFailed('IncompatibleTarget', error.details);
    if (isGrpcError(error, grpc.status.ALREADY_EXISTS) || isGrpcError(error, grpc.status.INVALID_ARGUMENT))
      throw new MigrationFailed('TargetFailed', error.details);
    throw error;
  }
}

/** StartMigration on the source (toward the prepared target's data endpoint). A refusal fails the migration. */
export async function startSource(source: MigrationDaemonClient, request: StartMigration): Promise<void> {
  try {
    await source.startMigration(request);
  } catch (error) {
    if (
      isGrpcError(error, grpc.status.FAILED_PRECONDITION) ||
      isGrpcError(error, grpc.status.INVALID_ARGUMENT) ||
      isGrpcError(error, grpc.status.NOT_FOUND)
    )
      throw new MigrationFailed('SourceFailed', error.details);
    throw error;
  }
}

/**
 * CancelMigration on the source: 'cancelled' once the source acknowledged it, 'too late' past the point of no
 * return (the daemon answers FAILED_PRECONDITION for that and nothing else: the device state crossed or post-copy
 * runs, and the hand-over finishes the migration). Any other error is thrown: the caller sends the cancel again.
 */
export async function cancelOnSource(
  source: Pick<MigrationDaemonClient, 'cancelMigration'>,
  id: string,
  reason: string,
  logger: Logger,
): Promise<'cancelled' | 'too late'> {
  try {
    await source.cancelMigration(id, reason);
    return 'cancelled';
  } catch (error) {
    if (!isGrpcError(error, grpc.status.FAILED_PRECONDITION)) throw error;
    logger.info({ err: error }, 'too late to cancel; the migration completes');
    return 'too late';
  }
}

export interface FollowOptions {
  /** The progress interval asked of the source's stream. */
  progressIntervalMs: number;
  /** Every event of the stream, the outcome included; a re-attached stream replays the history first. */
  onEvent: (event: MigrationEvent__Output) => void;
  /** Stops following (the watch is cancelled and the error thrown). */
  signal: AbortSignal;
  logger: Logger;
}

/** Follows the source's WatchMigration stream until the outcome; re-attaches after a broken stream. */
export async function followToOutcome(
  source: MigrationDaemonClient,
  id: string,
  options: FollowOptions,
): Promise<MigrationOutcome__Output> {
  const { signal, logger } = options;
  let outcome: MigrationOutcome__Output | undefined;
  const onEvent = (event: MigrationEvent__Output) => {
    options.onEvent(event);
    if (event.event === 'outcome' && event.outcome) outcome = event.outcome;
  };
  const stop = new AbortController();
  try {
    for (let attempt = 0; outcome === undefined; attempt++) {
      try {
        await source.watch(id, options.progressIntervalMs, onEvent, AbortSignal.any([stop.signal, signal]));
      } catch (error) {
        if (attempt >= WATCH_RETRIES || signal.aborted) throw error;
        logger.warn({ err: error }, 'watch broke; re-attaching');
      }
      signal.throwIfAborted();
      if (outcome === undefined) await new Promise((resolve) => setTimeout(resolve, WATCH_RETRY_MS));
    }
  } finally {
    stop.abort();
  }
  return outcome;
}

/** The target daemon's guests (its control API), for a target that no longer knows the migration. */
export interface TargetGuests {
  /** The guest, or undefined when the daemon has none of that name. */
  getGuest(name: string): Promise<Guest__Output | undefined>;
}

export interface HandOverInput extends MigrationDaemons {
  /** The daemons' id of the migration. */
  id: string;
  targetGuests: TargetGuests;
  outcome: MigrationOutcome__Output;
  sourceNode: string;
  targetNode: string;
  ownership: OwnershipRecord;
  /**
   * The source's stage when this run began, for a run that resumes a migration an earlier run left: a completed
   * migration whose source runs the guest again was rolled back by that run, so the record must not move to the
   * target again.
   */
  sourceStageAtStart?: MigrationState__Output['stage'];
  /**
   * The local disks (by name) whose source copy is kept after a successful hand-over (moved aside on the source)
   * instead of removed. Asked once the target runs the guest, right before the release, so that reading it costs
   * the guest no pause.
   */
  retainLocalDisks?: () => Promise<string[]>;
}

export type HandOverResult =
  /** The record names the target; it was resumed and the source released. */
  | {
      kind: 'handedOver';
      /** The compare-and-swap happened in this call (false: a hand-over resumed after a restart). */
      committedHere: boolean;
      /** Date.now() and performance.now() once ResumeTarget returned (the target's vCPUs run). */
      resumedAtMs: number;
      resumedAtPerfMs: number;
      /** The same moment, and the compare-and-swap's reply (committedHere only), in µs (wallClockUs). */
      resumedAtUs: number;
      recordedAtUs?: number;
      /**
       * Where the source keeps the local disk images it retained (its MigrationState's retained_local_images): from
       * the source's own answer, so a resumed hand-over reports what an earlier run had it retain.
       */
      sourceRetained: string[];
    }
  /**
   * The target was aborted; the source was resumed if the record still named it, unless its QEMU is gone
   * (sourceLost: it died, and the VM's restart policy decides what happens next). targetLost: the record had
   * moved to the target, but the target lost the guest before it resumed (why): the record went back to the
   * source, which runs the guest again.
   */
  | {
      kind: 'rolledBack';
      completed: boolean;
      sourceResumed: boolean;
      sourceLost: boolean;
      /** recordMoved: the record had moved to the target and was moved back. */
      targetLost?: { why: string; recordMoved: boolean };
    }
  /**
   * Post-copy completed and the record moved to the target, but the target lost the guest before it resumed it
   * (why). Both QEMUs are stopped (the target's remains aborted, the source released); the record stays with the
   * target, where the VM's restart policy starts the guest again.
   */
  | { kind: 'postCopyLost'; why: string }
  /**
   * The record moved to the target, which then lost its state (why: it knows nothing of the migration and holds no
   * live guest), so it may have resumed the guest, and the guest written to its disks, before it forgot: the
   * source's stale memory is never resumed but released, and the record stays with the target, where the VM's
   * restart policy starts the guest again.
   */
  | { kind: 'targetStateLost'; why: string }
  /**
   * The target's QEMU died after its daemon told it to resume the guest (guest_lost): `cont` may have run, so the
   * source's paused memory is stale and is released, not resumed; the record stays with the target, where the VM's
   * restart policy starts the guest again.
   */
  | { kind: 'resumedTargetLost'; why: string }
  /**
   * The post-copy failed after the post-copy switch had moved the record to the target (the guest ran there): both
   * QEMUs are stopped (endPostCopyOnTarget); the record stays with the target, where the VM's restart policy starts
   * the guest again from scratch.
   */
  | { kind: 'postCopyFailedOnTarget' };

/** The hand-over once the source reported its outcome (see the header). */
export async function handOver(input: HandOverInput): Promise<HandOverResult> {
  const { source, target, id, outcome, sourceNode, targetNode, ownership } = input;
  const completed = outcome.result === 'RESULT_COMPLETED';
  if (completed && input.sourceStageAtStart === 'MIGRATION_STAGE_SOURCE_RESUMED') {
    // An earlier run found the target without the guest and gave it back to the source, which runs it again.
    await target.abortIncoming(id);
    return {
      kind: 'rolledBack',
      completed,
      sourceResumed: true,
      sourceLost: false,
      targetLost: { why: 'found by an earlier run of this migration', recordMoved: true },
    };
  }
  const ownerAtOutcome = await ownerNow(input, completed);
  if (!completed && outcome.postCopy && ownerAtOutcome === targetNode) return endPostCopyOnTarget(input);
  let decision = decideHandOver(completed, ownerAtOutcome, sourceNode, targetNode);
  if (decision.kind === 'commit' && input.sourceStageAtStart !== undefined) {
    // A resumed run (an earlier one may have found the target without the guest and moved the record back before
    // it could resume the source): the record moves to the target only while the target still holds the guest.
    const held = await target.getMigration(id);
    if (held?.stage !== 'MIGRATION_STAGE_LOADED') {
      return giveBackToSource(input, held?.message || `${targetNode} no longer knows the migration`, false);
    }
  }
  const committedHere = decision.kind === 'commit';
  let recordedAtUs: number | undefined;
  if (decision.kind === 'commit') {
    const owner = await ownership.compareAndSwap(sourceNode, targetNode);
    recordedAtUs = wallClockUs();
    decision = decideHandOver(completed, owner, sourceNode, targetNode);
  }
  if (decision.kind === 'finish') {
    // Only a hand-over resumed after a restart can find a step already done.
    const resumed = committedHere ? undefined : await target.getMigration(id);
    if (resumed?.stage === 'MIGRATION_STAGE_RESUMED' && resumed.guestLost) {
      return releaseForTarget(input, { kind: 'resumedTargetLost', why: resumed.message }, false);
    }
    if (resumed?.stage !== 'MIGRATION_STAGE_RESUMED') {
      const lost = await resumeOrLose(input);
      // The target's daemon ended its side when its QEMU died mid-resume: nothing of it is left to abort.
      if (lost?.resumeInterrupted === true)
        return releaseForTarget(input, { kind: 'resumedTargetLost', why: lost.why }, false);
      // A target that may have run the guest before it lost its state: the source's memory is stale.
      if (lost?.mayHaveRun === true)
        return releaseForTarget(input, { kind: 'targetStateLost', why: lost.why });
      if (lost !== undefined && !outcome.postCopy) return reclaimForSource(input, lost.why);
      // After post-copy the source QEMU is not taken back (see postCopyLost): the guest starts again.
      if (lost !== undefined) return releaseForTarget(input, { kind: 'postCopyLost', why: lost.why });
    }
    const resumedAtMs = Date.now();
    const resumedAtPerfMs = performance.now();
    const resumedAtUs = wallClockUs();
    let released = committedHere ? undefined : await source.getMigration(id);
    // A source whose QEMU is gone (SOURCE_LOST) has nothing left to release either.
    if (released?.stage !== 'MIGRATION_STAGE_RELEASED' && released?.stage !== 'MIGRATION_STAGE_SOURCE_LOST') {
      released = await source.releaseSource(id, targetNode, ownership.epoch(), {
        removeLocalDisks: true,
        retainLocalDisks: (await input.retainLocalDisks?.()) ?? [],
      });
    }
    return {
      kind: 'handedOver',
      committedHere,
      resumedAtMs,
      resumedAtPerfMs,
      resumedAtUs,
      ...(recordedAtUs !== undefined ? { recordedAtUs } : {}),
      sourceRetained: released.retainedLocalImages ?? [],
    };
  }
  await target.abortIncoming(id);
  // (A record that names nobody any more, e.g. the VM vanished, resumes nothing.)
  if (decision.kind !== 'rollback' || !decision.resumeSource) {
    return { kind: 'rolledBack', completed, sourceResumed: false, sourceLost: false };
  }
  let state = await source.getMigration(id);
  if (state?.stage !== 'MIGRATION_STAGE_SOURCE_RESUMED' && state?.stage !== 'MIGRATION_STAGE_SOURCE_LOST') {
    state = await source.resumeSource(id, sourceNode, ownership.epoch());
  }
  const sourceLost = state?.stage === 'MIGRATION_STAGE_SOURCE_LOST';
  return { kind: 'rolledBack', completed, sourceResumed: !sourceLost, sourceLost };
}

/**
 * The record's owner for the hand-over's decision. A read made ahead (ownerReadAhead) is taken only when it can
 * lead to nothing but a compare-and-swap: the migration completed, the read names the source (decideHandOver:
 * commit), and this run started the migration (a resumed run may give the guest back to the source from a commit,
 * see handOver). The swap is checked against the stored record, so a read that has gone stale costs a conflict
 * and a fresh read inside compareAndSwap, never a move the record did not allow. Every other decision (resume the
 * target, abort it, resume the source) acts on a daemon and is taken on a read made now.
 */
async function ownerNow(input: HandOverInput, completed: boolean): Promise<string | undefined> {
  const { ownership, sourceNode } = input;
  const mayUseAhead = completed && input.sourceStageAtStart === undefined;
  const ahead = mayUseAhead ? await ownership.ownerReadAhead?.() : undefined;
  return ahead === sourceNode ? ahead : ownership.owner();
}

/**
 * Why the target does not run the guest; mayHaveRun: it may have run it before (see targetKnowsNothing);
 * resumeInterrupted: its QEMU died after it was told to resume (guest_lost).
 */
interface TargetLost {
  why: string;
  mayHaveRun: boolean;
  resumeInterrupted?: boolean;
}

const interruptedResume = (state: MigrationState__Output): TargetLost => ({
  why: state.message,
  mayHaveRun: true,
  resumeInterrupted: true,
});

/**
 * ResumeTarget; when the target cannot run the guest any more (its daemon reports the incoming migration failed
 * or aborted, e.g. its QEMU died after the record moved, or it knows nothing of it and runs no such guest),
 * returns why instead of failing. Undefined: the target runs the guest (or ran it: RESUMED). Any other error is
 * thrown and the hand-over retried: an unreachable daemon may still hold the guest.
 */
async function resumeOrLose(input: HandOverInput): Promise<TargetLost | undefined> {
  const { target, id, targetNode, ownership } = input;
  try {
    const resumed = await target.resumeTarget(id, targetNode, ownership.epoch());
    return resumed.guestLost ? interruptedResume(resumed) : undefined;
  } catch (error) {
    if (!isGrpcError(error, grpc.status.FAILED_PRECONDITION) && !isGrpcError(error, grpc.status.NOT_FOUND)) {
      throw error;
    }
    const state = await target.getMigration(id);
    if (state?.stage === 'MIGRATION_STAGE_TARGET_FAILED' || state?.stage === 'MIGRATION_STAGE_ABORTED') {
      // The daemon knows its record: a resume would have marked it and answered RESUMED (it never ran there).
      return { why: state.message, mayHaveRun: false };
    }
    // Resumed by a call that raced this one (or before the daemon restarted: its tombstone says so).
    if (state?.stage === 'MIGRATION_STAGE_RESUMED')
      return state.guestLost ? interruptedResume(state) : undefined;
    if (state !== undefined) throw error;
    return targetKnowsNothing(input, error.details);
  }
}

/**
 * The target daemon has neither a record nor a tombstone of the migration: it lost its state directory (a node
 * that rebooted with it wiped), or it is older than tombstones and forgot a finished step. Its guests tell the
 * rest. The guest running there: the target resumed it before it forgot, so the hand-over is done. No such guest,
 * or one whose QEMU is dead: nothing runs the guest there, and nothing will (an incoming QEMU runs only on
 * ResumeTarget of a migration its daemon knows, and the daemon refuses a PrepareIncoming of a guest it already
 * has); but the target may have resumed it (the record named it) and the guest written to its disks before the
 * target lost its state, so the source's memory, paused since before, must not run again (mayHaveRun: the guest
 * starts again by its restartPolicy). A guest there that is neither running nor dead (paused, starting) is asked
 * about again.
 */
async function targetKnowsNothing(input: HandOverInput, why: string): Promise<TargetLost | undefined> {
  const { source, id, sourceNode, targetNode } = input;
  // The guest's name on the nodes is the daemons' own; the source still holds the migration (or its tombstone).
  const guest = (await source.getMigration(id))?.guest;
  if (!guest) {
    throw new Error(
      `neither ${targetNode} (${why}) nor ${sourceNode} knows migration ${id}: cannot tell which guest to look for`,
    );
  }
  const found = await input.targetGuests.getGuest(guest);
  if (found?.phase === 'GUEST_PHASE_RUNNING') return undefined;
  if (found === undefined) {
    return {
      why: `${targetNode} knows nothing of the migration and has no guest ${guest} (its daemon lost its state, e.g. the node restarted)`,
      mayHaveRun: true,
    };
  }
  if (found.phase === 'GUEST_PHASE_FAILED' || found.phase === 'GUEST_PHASE_STOPPED') {
    return {
      why: `${targetNode} knows nothing of the migration and its guest ${guest} is ${found.phase} (${found.message || 'no reason given'})`,
      mayHaveRun: true,
    };
  }
  throw new Error(
    `${targetNode} knows nothing of migration ${id} but holds guest ${guest} (${found.phase}): asking again`,
  );
}

/**
 * The target lost the guest after a post-copy, or lost its state after the record moved to it (it may have run the
 * guest): the source's QEMU is not resumed, as after any post-copy (a post-copy that does not complete ends with
 * the source QEMU stopped, docs/architecture.md "Failure model"), but released: neither node keeps a paused copy
 * of the guest. The record stays with the target.
 */
async function releaseForTarget<Result extends HandOverResult>(
  input: HandOverInput,
  result: Result,
  abortTarget = true,
): Promise<Result> {
  const { source, target, id, targetNode, ownership } = input;
  // The record names the target, where the guest starts again: its copies of the local disks stay, and so do the
  // source's (released, not removed), which may be the only complete ones.
  if (abortTarget) await target.abortIncoming(id, { keepLocalDisks: true });
  const state = await source.getMigration(id);
  if (state?.stage !== 'MIGRATION_STAGE_RELEASED' && state?.stage !== 'MIGRATION_STAGE_SOURCE_LOST') {
    await source.releaseSource(id, targetNode, ownership.epoch());
  }
  return result;
}

/**
 * The record names the target, but the target lost the guest before it ran it: nothing runs the guest anywhere
 * (the source is paused, after QEMU's completion). The target's remains are aborted, the record moves back to
 * the source by compare-and-swap, and only then does the source run the guest again.
 */
async function reclaimForSource(input: HandOverInput, why: string): Promise<HandOverResult> {
  const { target, id, sourceNode, targetNode, ownership } = input;
  await target.abortIncoming(id);
  const owner = await ownership.compareAndSwap(targetNode, sourceNode);
  if (owner !== sourceNode) {
    throw new Error(`the ownership record names ${owner ?? 'nobody'}, not ${targetNode}: not reclaiming`);
  }
  return giveBackToSource(input, why, true);
}

/**
 * The target lost the guest and the record names the source: abort what is left of the target (reclaimForSource
 * did so before it moved the record back), then resume the source.
 */
async function giveBackToSource(
  input: HandOverInput,
  why: string,
  recordMoved: boolean,
): Promise<HandOverResult> {
  const { source, target, id, sourceNode, ownership } = input;
  if (!recordMoved) await target.abortIncoming(id);
  let state = await source.getMigration(id);
  if (state?.stage !== 'MIGRATION_STAGE_SOURCE_RESUMED' && state?.stage !== 'MIGRATION_STAGE_SOURCE_LOST') {
    state = await source.resumeSource(id, sourceNode, ownership.epoch());
  }
  const sourceLost = state?.stage === 'MIGRATION_STAGE_SOURCE_LOST';
  return {
    kind: 'rolledBack',
    completed: true,
    sourceResumed: !sourceLost,
    sourceLost,
    targetLost: { why, recordMoved },
  };
}

/**
 * A post-copy that failed (the source's outcome) while the record names the target: the post-copy switch moved it
 * there, so the target ran the guest (or was about to) and the source's QEMU holds only the pages not sent yet. The
 * target's guest cannot get them any more: AbortIncoming stops its QEMU (a running post-copy guest is stopped Failed,
 * PostCopyFailed; one still loaded is aborted; its local disk images are kept, they are the guest's disks), and the
 * source's remains are released. The record stays with the target, where the VM's restartPolicy starts the guest
 * again from scratch: exactly one QEMU, never a guest blocked on pages that never come.
 */
async function endPostCopyOnTarget(input: HandOverInput): Promise<HandOverResult> {
  const { source, target, id, targetNode, ownership } = input;
  await target.abortIncoming(id, { keepLocalDisks: true });
  const state = await source.getMigration(id);
  if (state?.stage !== 'MIGRATION_STAGE_RELEASED' && state?.stage !== 'MIGRATION_STAGE_SOURCE_LOST') {
    await source.releaseSource(id, targetNode, ownership.epoch());
  }
  return { kind: 'postCopyFailedOnTarget' };
}

/** How the post-copy switch ended (switchToTargetInPostCopy). */
export type PostCopySwitch =
  /** The record names the target and the target runs the guest while the remaining pages stream. */
  | {
      kind: 'resumed';
      /** The compare-and-swap happened in this call (false: the record named the target already). */
      committedHere: boolean;
      /** wallClockUs() when the target was seen loaded, of the swap's reply (committedHere only), of ResumeTarget's. */
      loadedSeenAtUs: number;
      recordedAtUs?: number;
      resumedAtUs: number;
      /** performance.now() at ResumeTarget's reply. */
      resumedAtPerfMs: number;
    }
  /**
   * Nothing was done (why): the target did not load the device state before `stop` (the source's outcome came
   * first, or the run stopped), it failed, or the record names neither node as expected. The hand-over after the
   * outcome decides as usual.
   */
  | { kind: 'notSwitched'; why: string };

export interface PostCopySwitchInput {
  source: MigrationDaemonClient;
  target: MigrationDaemonClient;
  id: string;
  sourceNode: string;
  targetNode: string;
  ownership: OwnershipRecord;
  /** A run that resumes a migration an earlier run left (see HandOverInput.sourceStageAtStart). */
  sourceStageAtStart?: MigrationState__Output['stage'];
  /** Aborted when the source's outcome arrives or the run stops: the switch then does nothing more. */
  stop: AbortSignal;
  /** How often the target is asked whether it loaded the device state (default 5 ms). */
  pollMs?: number;
  /** Between two ResumeTarget calls whose error says nothing about the target (default 200 ms). */
  retryMs?: number;
  logger: Logger;
}

/**
 * The post-copy switch: the source switched to post-copy (phase PostCopy; QEMU forbids it to run the guest from
 * here on); once the target loaded the device state (stage LOADED, paused by -S), both QEMUs are paused, and the
 * record moves source → target by the same compare-and-swap as at an ordinary switchover; only when it names the
 * target is the target resumed (ResumeTarget, with the record's epoch). The guest then runs on the target while
 * its missing pages are fetched from the source on demand. The source is released only after its outcome
 * (handOver). A target that is lost before it ran the guest is left to the hand-over (the source fails the
 * post-copy at its stall timeout); an unreachable one is asked again until `stop`.
 */
export async function switchToTargetInPostCopy(input: PostCopySwitchInput): Promise<PostCopySwitch> {
  const { target, id, sourceNode, targetNode, ownership, stop } = input;
  const pollMs = input.pollMs ?? 5;
  for (;;) {
    if (stop.aborted) return { kind: 'notSwitched', why: 'the outcome came before the target loaded' };
    const state = await target.getMigration(id);
    const stage = state?.stage;
    if (
      stage === 'MIGRATION_STAGE_LOADED' ||
      stage === 'MIGRATION_STAGE_RESUMING' ||
      stage === 'MIGRATION_STAGE_RESUMED'
    )
      break;
    if (stage !== 'MIGRATION_STAGE_RUNNING')
      return {
        kind: 'notSwitched',
        why: `${targetNode}: ${state?.message || 'the migration is unknown there'}`,
      };
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  const loadedSeenAtUs = wallClockUs();
  // The read made ahead (at the pause) only when it can lead to nothing but the swap, as in handOver (ownerNow).
  const ahead = input.sourceStageAtStart === undefined ? await ownership.ownerReadAhead?.() : undefined;
  let owner = ahead === sourceNode ? ahead : await ownership.owner();
  let recordedAtUs: number | undefined;
  const committedHere = owner === sourceNode;
  if (owner === sourceNode) {
    if (stop.aborted) return { kind: 'notSwitched', why: 'the outcome came before the swap' };
    owner = await ownership.compareAndSwap(sourceNode, targetNode);
    recordedAtUs = wallClockUs();
  }
  if (owner !== targetNode)
    return { kind: 'notSwitched', why: `the ownership record names ${owner ?? 'nobody'}` };
  for (;;) {
    try {
      const resumed = await target.resumeTarget(id, targetNode, ownership.epoch());
      if (resumed.guestLost) return { kind: 'notSwitched', why: resumed.message };
      return {
        kind: 'resumed',
        committedHere,
        loadedSeenAtUs,
        ...(recordedAtUs !== undefined ? { recordedAtUs } : {}),
        resumedAtUs: wallClockUs(),
        resumedAtPerfMs: performance.now(),
      };
    } catch (error) {
      // The target lost the guest (its state says why): the hand-over after the outcome finds out again.
      if (isGrpcError(error, grpc.status.FAILED_PRECONDITION) || isGrpcError(error, grpc.status.NOT_FOUND))
        return { kind: 'notSwitched', why: error.details };
      const transient =
        isGrpcError(error, grpc.status.UNAVAILABLE) || isGrpcError(error, grpc.status.DEADLINE_EXCEEDED);
      if (stop.aborted || !transient) throw error;
      input.logger.warn({ err: error }, 'ResumeTarget failed on the post-copy switch; asking again');
      await new Promise((resolve) => setTimeout(resolve, input.retryMs ?? 200));
    }
  }
}
