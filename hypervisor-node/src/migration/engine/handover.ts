// The hand-over contract. The engine never resumes a target or releases a source on its own; the caller drives
// these steps, after it has recorded the new owner (DESIGN.md "Ownership, exactly once"):
//   success: recordOwner() says the target owns the guest → target.resume() → source.release()
//   failure: the record still names the source → target.abort() → source.resumeAfterFailure()
// Invariant, checkable at any instant: at most one QEMU runs the guest.
import { QmpClosedError, type QmpClient, type QmpRunState } from '../../qemu/qmp-client.js';
import type { SourceMigration } from './source.js';
import type { TargetMigration } from './target.js';

/** A QEMU's run state, or 'absent' when there is no QEMU (never started, quit, or its QMP is gone). */
export type OwnerRunState = QmpRunState | 'absent';

export class OwnershipViolation extends Error {
  constructor(
    message: string,
    readonly source: OwnerRunState,
    readonly target: OwnerRunState,
  ) {
    super(`${message} (source ${source}, target ${target})`);
    this.name = 'OwnershipViolation';
  }
}

export async function runStateOf(qmp: QmpClient | undefined): Promise<OwnerRunState> {
  if (qmp === undefined || qmp.closed) return 'absent';
  try {
    return (await qmp.queryStatus()).status;
  } catch (err) {
    if (err instanceof QmpClosedError) return 'absent';
    throw err;
  }
}

/** Queries both QEMUs and throws OwnershipViolation if both run the guest; returns both states otherwise. */
export async function assertAtMostOneRunning(
  source: QmpClient | undefined,
  target: QmpClient | undefined,
): Promise<{ source: OwnerRunState; target: OwnerRunState }> {
  const [s, t] = await Promise.all([runStateOf(source), runStateOf(target)]);
  if (s === 'running' && t === 'running') throw new OwnershipViolation('the guest runs on both QEMUs', s, t);
  return { source: s, target: t };
}

export interface HandOverResult {
  owner: 'source' | 'target';
  reason: string;
  /** Date.now() when the target was resumed (owner 'target'). */
  resumedAtMs?: number;
}

/**
 * Drives the hand-over once the migration has run: waits until the target holds the guest loaded and paused
 * (and, for pre-copy, the source reports Completed), asks `recordOwner` to record the target as the owner (the
 * compare-and-swap in the Kubernetes API), and then resumes the target and releases the source, or rolls back
 * to the source. If recordOwner throws, nothing is resumed: both sides stay paused (recoverable) and the error
 * propagates. In post-copy the source cannot run again, so a record that does not move leaves the guest paused on
 * the target (an error) instead of rolling back.
 */
export async function handOver(
  source: SourceMigration,
  target: TargetMigration,
  recordOwner: () => Promise<boolean>,
): Promise<HandOverResult> {
  const loaded = await target.loaded.catch((err: Error) => err);
  if (loaded instanceof Error) {
    const outcome = await source.done;
    return rollBack(
      source,
      target,
      `the target did not load the guest (${loaded.message}); source: ${outcome.reason}`,
    );
  }
  if (!loaded.postCopy) {
    const outcome = await source.done;
    if (outcome.result !== 'Completed') {
      return rollBack(source, target, `the source ended ${outcome.result}: ${outcome.reason}`);
    }
  }
  if (!(await recordOwner())) {
    if (loaded.postCopy) {
      // The source cannot run again once post-copy started; aborting the target would lose the guest.
      throw new Error(
        'the ownership record did not move, but post-copy has started: the guest stays paused on the target ' +
          'until the record names it',
      );
    }
    return rollBack(source, target, 'the ownership record did not move to the target');
  }
  // Last guard before `cont`: the source must not be running the guest.
  const sourceState = await runStateOf(source.qmp);
  if (sourceState === 'running') {
    const targetState = await runStateOf(target.qmp);
    throw new OwnershipViolation(
      'the source runs the guest: refusing to resume the target',
      sourceState,
      targetState,
    );
  }
  await target.resume();
  const resumedAtMs = Date.now();
  const outcome = await source.done;
  if (outcome.result !== 'Completed') {
    throw new Error(`the target runs the guest but the source ended ${outcome.result}: ${outcome.reason}`);
  }
  await source.release();
  return {
    owner: 'target',
    reason: 'the target owns and runs the guest; the source was released',
    resumedAtMs,
  };
}

async function rollBack(
  source: SourceMigration,
  target: TargetMigration,
  reason: string,
): Promise<HandOverResult> {
  await target.abort();
  await source.resumeAfterFailure();
  return { owner: 'source', reason };
}
