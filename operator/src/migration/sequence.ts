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
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  isGrpcError,
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
}

/** PrepareIncoming on the target; returns its data endpoint. A refusal fails the migration. */
export async function prepareTarget(
  target: MigrationDaemonClient,
  request: PrepareIncoming,
): Promise<string> {
  try {
    const { dataEndpoint } = await target.prepareIncoming(request);
    return dataEndpoint;
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

/** CancelMigration on the source; past the point of no return it is too late, and the migration completes. */
export async function cancelOnSource(
  source: MigrationDaemonClient,
  id: string,
  reason: string,
  logger: Logger,
): Promise<void> {
  try {
    await source.cancelMigration(id, reason);
  } catch (error) {
    // Past the point of no return (device state crossed): the hand-over finishes the migration.
    if (!isGrpcError(error, grpc.status.FAILED_PRECONDITION)) throw error;
    logger.info({ err: error }, 'too late to cancel; the migration completes');
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

export interface HandOverInput extends MigrationDaemons {
  /** The daemons' id of the migration. */
  id: string;
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
    };

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
  let decision = decideHandOver(completed, await ownership.owner(), sourceNode, targetNode);
  if (decision.kind === 'commit' && input.sourceStageAtStart !== undefined) {
    // A resumed run (an earlier one may have found the target without the guest and moved the record back before
    // it could resume the source): the record moves to the target only while the target still holds the guest.
    const held = await target.getMigration(id);
    if (held?.stage !== 'MIGRATION_STAGE_LOADED') {
      return giveBackToSource(input, held?.message || `${targetNode} no longer knows the migration`, false);
    }
  }
  const committedHere = decision.kind === 'commit';
  if (decision.kind === 'commit') {
    const owner = await ownership.compareAndSwap(sourceNode, targetNode);
    decision = decideHandOver(completed, owner, sourceNode, targetNode);
  }
  if (decision.kind === 'finish') {
    // Only a hand-over resumed after a restart can find a step already done.
    const resumed = committedHere ? undefined : await target.getMigration(id);
    if (resumed?.stage !== 'MIGRATION_STAGE_RESUMED') {
      const lost = await resumeOrLose(target, id, targetNode, ownership.epoch());
      // After post-copy the target held the newest memory: the source cannot take the guest back.
      if (lost !== undefined && !outcome.postCopy) return reclaimForSource(input, lost);
      if (lost !== undefined) throw new Error(`${targetNode} lost the guest after post-copy: ${lost}`);
    }
    const resumedAtMs = Date.now();
    const resumedAtPerfMs = performance.now();
    const released = committedHere ? undefined : await source.getMigration(id);
    if (released?.stage !== 'MIGRATION_STAGE_RELEASED') {
      await source.releaseSource(id, targetNode, ownership.epoch());
    }
    return { kind: 'handedOver', committedHere, resumedAtMs, resumedAtPerfMs };
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
 * ResumeTarget; when the target cannot run the guest any more (its daemon reports the incoming migration failed
 * or aborted, e.g. its QEMU died after the record moved), returns why instead of failing. Any other error is
 * thrown and the hand-over retried: an unreachable daemon may still hold the guest, and one that no longer knows
 * the migration may have resumed it before it restarted.
 */
async function resumeOrLose(
  target: MigrationDaemonClient,
  id: string,
  targetNode: string,
  epoch: number | undefined,
): Promise<string | undefined> {
  try {
    await target.resumeTarget(id, targetNode, epoch);
    return undefined;
  } catch (error) {
    if (!isGrpcError(error, grpc.status.FAILED_PRECONDITION) && !isGrpcError(error, grpc.status.NOT_FOUND)) {
      throw error;
    }
    const state = await target.getMigration(id);
    if (state?.stage === 'MIGRATION_STAGE_TARGET_FAILED' || state?.stage === 'MIGRATION_STAGE_ABORTED') {
      return state.message;
    }
    throw error;
  }
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
