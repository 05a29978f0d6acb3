// One in-process run of a Migration, from its current phase to a terminal one: it drives the two daemons through
// the sequence of sequence.ts and mirrors what they report into Migration.status.
//
// A run is keyed by the Migration's UID; the daemons know it by the id of its current attempt (daemonMigrationId).
// It follows the source's WatchMigration stream and mirrors it into status (phase changes at once, progress at most
// once per progressIntervalMs). A run that is lost with its process is resumed from Migration.status + the
// daemons' state by the next reconcile (decideRunStart): StartMigration is only issued while the source knows
// nothing of the migration, so a re-run never starts a second one, and a target prepared by a lost run (whose
// token is gone with it) is aborted and prepared afresh under a new attempt.
//
// The hand-over's ownership record is the VM's status.node/epoch (ownership.ts): a single compare-and-swap in the
// Kubernetes API decides the owner.
import { basename } from 'node:path';
import type { Logger } from 'pino';
import type {
  Disk,
  HypervisorNode,
  Migration,
  MigrationProgress,
  MigrationStatus,
  MigrationSwitchover,
  VirtualMachine,
} from '../../../crds/index.js';
import type {
  Guest__Output,
  MigrationEvent__Output,
  MigrationOutcome__Output,
  MigrationState__Output,
  TargetSwitchover__Output,
} from '../../../proto/index.js';
import { wallClockUs } from '../../../proto/index.js';
import { assembleSwitchover, measureClockOffset, type ClockOffset } from './switchover.js';
import type { Informer } from '../runtime/informer.js';
import type { DaemonClientPool } from '../daemon/client-pool.js';
import { newMigrationToken, retainedImagePath } from '../../../proto/index.js';
import type { MigrationDaemonClient } from '../daemon/migration-client.js';
import { guestName } from '../daemon/guest-key.js';
import { FencedError } from '../daemon/fencing.js';
import { NotLeadingError } from '../runtime/leader.js';
import type { KubeClient } from '../../../kube/client.js';
import { Migrations } from '../../../crds/index.js';
import { isNodeReady } from '../placement/placement.js';
import { isNodeLost } from '../hypervisornode/health.js';
import type { VmOwnership } from './ownership.js';
import { toWirePolicy, type ResolvedSettings } from './policy.js';
import {
  cancelOnSource,
  followToOutcome,
  handOver,
  prepareTarget,
  startSource,
  switchToTargetInPostCopy,
  type HandOverResult,
  type OwnershipRecord,
  type PostCopySwitch,
} from './sequence.js';
import {
  ATTEMPT_ANNOTATION,
  MigrationFailed,
  ProgressThrottle,
  closePhase,
  daemonMigrationId,
  decideRunStart,
  failureFromOutcome,
  isLaterPhase,
  isWireTerminal,
  migrationAttempt,
  phaseFromWire,
} from './state.js';
import { toProgress, toQuiesce, type MigrationStatusWriter } from './status.js';
import { StatusWriteQueue } from './status-queue.js';
import { steerFramesToTarget } from './steer-frames.js';

export interface Run {
  /** The latest Migration this run wrote or read. */
  migration: Migration;
  /** The daemons' id of the current attempt. */
  id: string;
  /**
   * performance.now() when this run saw the source pause the guest (Quiescing, or Freezing without it) as it
   * happened; unset when the pause came before this run (replayed history).
   */
  pausedSeenAtMs?: number;
  /** wallClockUs() when this run received the source's outcome as it happened (pausedSeenAtMs set). */
  outcomeSeenAtUs?: number;
  /** Why the run is cancelled (the Migration or its VM is being deleted); undefined while it is not. */
  cancelled?: string;
  /** The source acknowledged the cancel, or answered that it is too late: it is not sent again. */
  cancelSettled?: boolean;
  /** Runs of this Migration that failed in a row before this one, and the last one's error. */
  failedRuns: number;
  lastFailure?: string;
  /** The controller stopped (shutdown, lost leadership): the run lets go; the next leader resumes it. */
  stopped: AbortSignal;
  /** Set once StartMigration returned: cancelling must go through the source daemon. */
  source?: MigrationDaemonClient;
  done: Promise<void>;
}

/** The source's outcome, and the status writes follow() held back since it (see follow). */
interface Followed {
  outcome: MigrationOutcome__Output;
  /** Lets the held-back writes go, waits for them, then writes the last progress and the quiesce report. */
  settle: () => Promise<void>;
  /** How the post-copy switch ended, when the source switched to post-copy (settled before follow returned). */
  postCopy?: PostCopySwitch;
}

export interface MigrationRunnerOptions {
  client: KubeClient;
  pool: DaemonClientPool;
  nodes: Informer<HypervisorNode>;
  status: MigrationStatusWriter;
  vms: VmOwnership;
  /** The Migration's settings (overrides, MigrationPolicies, defaults). */
  settingsFor: (migration: Migration, vm: VirtualMachine) => Promise<{ settings: ResolvedSettings }>;
  /** Least interval between two progress writes to Migration.status. */
  progressIntervalMs: number;
}

/** Drives runs; the reconciler keeps the registry of runs and starts and cancels them. */
export class MigrationRunner {
  constructor(private readonly options: MigrationRunnerOptions) {}

  /**
   * Cancels the run: before StartMigration the run sees the flag; after it, the source daemon is told. Called
   * again (every reconcile of a deleted Migration), it sends the cancel again until the source acknowledged it
   * or answered that it is too late; a failed call is thrown, and the reconcile retried.
   */
  async cancel(run: Run, why: string, logger: Logger): Promise<void> {
    run.cancelled ??= why;
    // Not started yet: the run checks the flag before StartMigration and right after it.
    if (!run.source || run.cancelSettled) return;
    await cancelOnSource(run.source, run.id, run.cancelled, logger);
    run.cancelSettled = true;
  }

  /** One migration from its current phase to a terminal one. */
  async drive(run: Run, logger: Logger): Promise<void> {
    const { sourceNode, targetNode } = run.migration.status!;
    const source = this.daemon(sourceNode!, run.stopped);
    const target = this.daemon(targetNode!, run.stopped);
    try {
      const phase = run.migration.status?.phase;
      if (!source || !target) {
        const missing = !source ? sourceNode : targetNode;
        // Once the daemons hold the migration, a node that is not Ready now is waited for, not given up on.
        if (phase !== 'Scheduling') throw new Error(`${missing} is not Ready; retrying`);
        if (run.cancelled !== undefined) {
          throw new MigrationFailed('Cancelled', `${run.cancelled} while ${missing} is not Ready`);
        }
        throw new MigrationFailed(!source ? 'SourceFailed' : 'TargetNotReady', `${missing} is not Ready`);
      }
      const sourceAtStart = await source.migration.getMigration(run.id);
      const sourceKnows = sourceAtStart !== undefined;
      const targetKnows = !sourceKnows && (await target.migration.getMigration(run.id)) !== undefined;
      const start = decideRunStart({
        phase,
        sourceKnows,
        targetKnows,
        cancelled: run.cancelled !== undefined,
        failedRuns: run.failedRuns,
        lastFailure: run.lastFailure,
      });
      if (start.kind === 'cancel')
        throw new MigrationFailed('Cancelled', `${run.cancelled} before the source started`);
      if (start.kind === 'fail') throw new MigrationFailed(start.reason, start.message, start.nothingStarted);
      if (start.kind === 'initialize') await this.initialize(run, source, target, start.freshAttempt, logger);
      run.source = source.migration;
      if (run.cancelled !== undefined) await this.cancel(run, run.cancelled, logger);
      // The daemons' clock offsets for the switchover timeline, read while the copy runs (never on the switchover's
      // path); a daemon that cannot tell leaves its steps out.
      const clocks = Promise.all([
        measureClockOffset(() => source.migration.readClock()),
        measureClockOffset(() => target.migration.readClock()),
      ]);
      const ownership = this.fencedOwnership(run, logger);
      const switchInPostCopy = (stop: AbortSignal) =>
        switchToTargetInPostCopy({
          source: source.migration,
          target: target.migration,
          id: run.id,
          sourceNode: sourceNode!,
          targetNode: targetNode!,
          ownership,
          sourceStageAtStart: sourceAtStart?.stage,
          stop,
          logger,
        });
      const atPause = (): void => {
        ownership.readAhead();
        steerFramesToTarget(target.migration, run.id, targetNode!, logger);
      };
      const followed = await this.follow(run, source.migration, atPause, switchInPostCopy, logger);
      // The outcome is in: there is nothing left to cancel.
      run.cancelSettled = true;
      await this.handOver(run, followed, source, target, sourceAtStart?.stage, ownership, clocks, logger);
    } catch (error) {
      if (!(error instanceof MigrationFailed)) throw error;
      // A run whose controller stopped writes no outcome: the next leader decides from status and the daemons.
      run.stopped.throwIfAborted();
      logger.warn({ reason: error.reason }, error.message);
      if (target) {
        await this.abortAttempts(run, target.migration, migrationAttempt(run.migration) + 1).catch(
          (abortError: unknown) => {
            if (!error.nothingStarted || isDeposed(abortError)) throw abortError;
            logger.warn(
              { err: abortError },
              'could not abort the target; its daemon removes an unused incoming QEMU',
            );
          },
        );
      }
      this.assertMayAct(run);
      await this.options.vms.releaseVm(run.migration, error.reason === 'Cancelled' ? 'Aborted' : 'Failed');
      run.migration = await this.options.status.finish(
        run.migration,
        error.reason === 'Cancelled' ? 'Aborted' : 'Failed',
        error.reason,
        error.message,
      );
    }
  }

  /** The node's clients for this run: once `stopped` aborted (the controller stopped), they make no call. */
  private daemon(nodeName: string, stopped: AbortSignal) {
    const node = this.options.nodes.get(nodeName);
    if (!node || !isNodeReady(node)) return undefined;
    const endpoint = node.status!.endpoint!;
    return {
      control: this.options.pool.guestClient(nodeName, endpoint).during(stopped),
      migration: this.options.pool.migrationClient(nodeName, endpoint).during(stopped),
    };
  }

  /**
   * Throws unless this run may still act: its controller runs and this replica holds a fresh lease (the check its
   * daemon calls make through their token). The writes that decide where the guest runs (the ownership swap, the
   * VM's release) are Kubernetes writes the daemons cannot fence, so the run checks before each.
   */
  private assertMayAct(run: Run): void {
    run.stopped.throwIfAborted();
    this.options.pool.fencing.fencingToken();
  }

  /**
   * The VM's ownership record for this run's hand-over: it is swapped only while the run may act, and never to or
   * from a node declared lost (its guests are fenced; the Migration ends NodeLost once this run let go).
   */
  private fencedOwnership(run: Run, logger: Logger): OwnershipRecord & { readAhead(): void } {
    const record = this.options.vms.ownershipRecord(run.migration, logger);
    return {
      ...record,
      compareAndSwap: (from, to) => {
        this.assertMayAct(run);
        const lost = [from, to].filter((node) => isNodeLost(this.options.nodes.get(node)));
        if (lost.length > 0)
          throw new Error(`node ${lost.join(' and ')} is lost: the ownership record stays`);
        return record.compareAndSwap(from, to);
      },
    };
  }

  /** AbortIncoming on the target for attempts 0 … count-1 (idempotent; an unknown id is not an error). */
  private async abortAttempts(run: Run, target: MigrationDaemonClient, count: number): Promise<void> {
    for (let attempt = 0; attempt < count; attempt++) {
      await target.abortIncoming(daemonMigrationId(run.migration.metadata.uid!, attempt));
    }
  }

  /** Records the next attempt in the Migration's annotation (compare-and-swap on resourceVersion). */
  private async nextAttempt(migration: Migration): Promise<Migration> {
    const attempt = String(migrationAttempt(migration) + 1);
    return this.options.client.patch<Migration>(
      Migrations,
      migration.metadata.name!,
      migration.metadata.namespace,
      { type: 'merge', body: { metadata: { annotations: { [ATTEMPT_ANNOTATION]: attempt } } } },
      { resourceVersion: migration.metadata.resourceVersion },
    );
  }

  /**
   * Locks the VM (phase Migrating, activeMigration), then PrepareIncoming on the target, StartMigration on the
   * source. `freshAttempt`: the target holds the current id from a run that is gone; a new attempt replaces it.
   */
  private async initialize(
    run: Run,
    source: NonNullable<ReturnType<MigrationRunner['daemon']>>,
    target: NonNullable<ReturnType<MigrationRunner['daemon']>>,
    freshAttempt: boolean,
    logger: Logger,
  ): Promise<void> {
    const uid = run.migration.metadata.uid!;
    if (freshAttempt) {
      const discarded = run.id;
      // The attempt is recorded before anything is aborted: a crash in between leaves the older attempt to the
      // clean-up below, never a target nobody knows about.
      run.migration = await this.nextAttempt(run.migration);
      run.id = daemonMigrationId(uid, migrationAttempt(run.migration));
      logger.info({ discarded, id: run.id }, 'target prepared by a lost run discarded; preparing it afresh');
    }
    await this.abortAttempts(run, target.migration, migrationAttempt(run.migration));
    const { id } = run;
    const migration = run.migration;
    const { sourceNode, targetNode } = migration.status!;
    const vm = await this.options.vms.lockVm(migration);
    const startedAt = new Date();
    const guest = await source.control.getGuest(guestName(vm));
    if (!guest || guest.spec?.uuid !== vm.metadata.uid) {
      throw new MigrationFailed('VMNotRunning', `${sourceNode} has no guest of ${vm.metadata.name}`);
    }
    const { settings } = await this.options.settingsFor(migration, vm);
    // Checked before the target is prepared: settings the daemons cannot take fail the Migration, not the run.
    const policy = wirePolicyOf(settings);
    const token = newMigrationToken();
    const { dataEndpoint, diskEndpoint } = await prepareTarget(target.migration, {
      id,
      source: guest,
      token,
      postCopy: settings.allowPostCopy,
      multifdChannels: settings.multifdChannels,
      multifdCompression: policy.multifdCompression,
      diskCopyTimeoutPerGiBSeconds: settings.completionTimeoutPerGiBSeconds,
    });
    // Written once the target is prepared, so that this write separates PrepareIncoming from StartMigration: a
    // run lost in between leaves a prepared target that decideRunStart finds and replaces.
    if (run.migration.status?.phase !== 'Initializing') {
      run.migration = await this.options.status.enter(
        run.migration,
        'Initializing',
        startedAt,
        `${targetNode} prepared`,
      );
    }
    if (run.cancelled !== undefined)
      throw new MigrationFailed('Cancelled', `${run.cancelled} during Initializing`);
    run.stopped.throwIfAborted();
    await startSource(source.migration, {
      id,
      guest: guestName(vm),
      targetDataEndpoint: dataEndpoint,
      targetDiskEndpoint: diskEndpoint,
      token,
      policy,
    });
    logger.info({ dataEndpoint }, 'migration started');
  }

  /**
   * Mirrors the source's WatchMigration stream into status until the outcome; re-attaches after a broken stream.
   * From the outcome on, the guest is paused until the hand-over resumes it somewhere, so the status writes that
   * have not started yet (phases, progress, their Events) wait for `settle()`, which the hand-over calls once it
   * is done: its critical path then holds the ownership swap only (docs/architecture.md, "The switchover's
   * critical path"). `ownership.readAhead()` reads the record as soon as the guest pauses, for the same reason.
   *
   * When the source switches to post-copy (phase PostCopy), `switchInPostCopy` moves the record to the target and
   * resumes it there while the pages still stream (sequence.ts switchToTargetInPostCopy); the status writes wait
   * for it the same way, and it is told to stop once the outcome arrives. A switch that fails with an error ends
   * the follow, and the run fails with that error (a retried run switches again from the replayed PostCopy).
   */
  private async follow(
    run: Run,
    source: MigrationDaemonClient,
    /** Called once when the source is seen pausing the guest for the switchover (not on a replay). */
    atPause: () => void,
    switchInPostCopy: (stop: AbortSignal) => Promise<PostCopySwitch>,
    logger: Logger,
  ): Promise<Followed> {
    const { status } = this.options;
    const throttle = new ProgressThrottle(this.options.progressIntervalMs);
    let progress: MigrationProgress | undefined;
    const writes = new StatusWriteQueue((err: unknown) => logger.warn({ err }, 'status write failed'));
    const serial = (write: () => Promise<unknown>) => writes.push(write);
    const outcomeIn = new AbortController();
    const switchFailed = new AbortController();
    let switching: Promise<PostCopySwitch | undefined> | undefined;
    const startSwitch = () => {
      writes.hold();
      const startedAtUs = wallClockUs();
      const after = (us: number | undefined) => (us === undefined ? undefined : (us - startedAtUs) / 1000);
      switching = switchInPostCopy(AbortSignal.any([outcomeIn.signal, run.stopped])).then(
        (switched) => {
          // The guest runs on the target (or the switch gave up): the writes held back go now.
          void writes.release();
          if (switched.kind === 'resumed') {
            logger.info(
              {
                committedHere: switched.committedHere,
                loadedSeenAfterMs: after(switched.loadedSeenAtUs),
                recordedAfterMs: after(switched.recordedAtUs),
                resumedAfterMs: after(switched.resumedAtUs),
              },
              'post-copy: the target runs the guest',
            );
            serial(async () => {
              if (run.migration.status?.phase !== 'PostCopy') return;
              run.migration = await status.note(
                run.migration,
                'PostCopy',
                `the guest runs on ${run.migration.status.targetNode}, which the ownership record names; ` +
                  `the remaining pages follow from ${run.migration.status.sourceNode}`,
              );
            });
          } else
            logger.info({ why: switched.why }, 'post-copy: the target was not resumed before the outcome');
          return switched;
        },
        (error: unknown) => {
          switchFailed.abort(error);
          return undefined;
        },
      );
    };
    let pendingFlush: NodeJS.Timeout | undefined;
    const flushProgress = () => {
      pendingFlush = undefined;
      if (!throttle.take(Date.now())) return;
      const snapshot = progress;
      serial(async () => {
        run.migration = await status.write(run.migration, (current) => ({
          ...current,
          progress: snapshot,
        }));
      });
    };
    const onEvent = (event: MigrationEvent__Output) => {
      if (event.event === 'outcome') {
        writes.hold();
        outcomeIn.abort();
      }
      if (event.event === 'phase' && event.phase) {
        const at = new Date(event.atUnixMs);
        if (isWireTerminal(event.phase.to)) {
          serial(async () => {
            run.migration = await status.write(run.migration, (current) => ({
              ...current,
              phaseTimings: closePhase(current.phaseTimings, at),
            }));
          });
          return;
        }
        const phase = phaseFromWire(event.phase.to);
        if (!phase) return;
        if (phase === 'PostCopy' && switching === undefined) startSwitch();
        if (event.phase.from === event.phase.to) {
          // A note within the phase (a post-copy paused and recovering, or resumed): shown while it lasts.
          const reason = event.phase.reason;
          serial(async () => {
            if (run.migration.status?.phase !== phase) return;
            run.migration = await status.note(run.migration, phase, reason);
          });
          return;
        }
        // Seen as it happens only while the status is still before the pause (not a replay after a restart).
        if (
          (phase === 'Quiescing' || phase === 'Freezing') &&
          run.pausedSeenAtMs === undefined &&
          isLaterPhase('Quiescing', run.migration.status?.phase)
        ) {
          run.pausedSeenAtMs = performance.now();
          atPause();
        }
        const snapshot = progress;
        throttle.wrote(Date.now());
        serial(async () => {
          if (!isLaterPhase(phase, run.migration.status?.phase)) return;
          run.migration = await status.enter(run.migration, phase, at, event.phase!.reason, snapshot);
        });
      } else if (event.event === 'outcome' && run.pausedSeenAtMs !== undefined) {
        run.outcomeSeenAtUs ??= wallClockUs();
      } else if (event.event === 'progress' && event.progress) {
        progress = toProgress(event.progress);
        if (!pendingFlush) pendingFlush = setTimeout(flushProgress, throttle.delayMs(Date.now()));
      }
    };
    let outcome: MigrationOutcome__Output;
    try {
      outcome = await followToOutcome(source, run.id, {
        progressIntervalMs: Math.min(this.options.progressIntervalMs, 1_000),
        onEvent,
        signal: AbortSignal.any([run.stopped, switchFailed.signal]),
        logger,
      });
    } catch (error) {
      outcomeIn.abort();
      await switching;
      await writes.release();
      if (switchFailed.signal.aborted && !run.stopped.aborted) throw switchFailed.signal.reason;
      throw error;
    } finally {
      clearTimeout(pendingFlush);
    }
    const postCopy = await switching;
    if (switchFailed.signal.aborted) {
      await writes.release();
      throw switchFailed.signal.reason;
    }
    const settle = async () => {
      await writes.release();
      // The last progress sample, and the source's Quiescing report once QEMU paused the guest before the
      // switchover.
      const quiesce = outcome.quiesce ? toQuiesce(outcome.quiesce) : undefined;
      if (progress || quiesce) {
        run.migration = await status.write(run.migration, (current) => ({
          ...current,
          ...(progress ? { progress } : {}),
          ...(quiesce ? { quiesce } : {}),
        }));
      }
    };
    return { outcome, settle, ...(postCopy !== undefined ? { postCopy } : {}) };
  }

  /** The hand-over with the VM's record as the owner, then the VM and the Migration's terminal status. */
  private async handOver(
    run: Run,
    { outcome, settle, postCopy }: Followed,
    source: NonNullable<ReturnType<MigrationRunner['daemon']>>,
    target: NonNullable<ReturnType<MigrationRunner['daemon']>>,
    sourceStageAtStart: MigrationState__Output['stage'] | undefined,
    ownership: OwnershipRecord,
    clocks: Promise<[ClockOffset | undefined, ClockOffset | undefined]>,
    logger: Logger,
  ): Promise<void> {
    const { sourceNode, targetNode } = run.migration.status! as Required<MigrationStatus>;
    // A replica that is no longer the leader must not take the ownership decision.
    run.stopped.throwIfAborted();
    const outcomeAt = Date.now();
    let result: HandOverResult;
    try {
      result = await handOver({
        source: source.migration,
        target: target.migration,
        targetGuests: target.control,
        id: run.id,
        outcome,
        sourceNode,
        targetNode,
        ownership,
        sourceStageAtStart,
        // Read when this run releases the source, not at the start (a user may decide to keep the source's copy
        // while the disk is being copied).
        retainLocalDisks: async () => {
          const vm = await this.options.vms.getVm(run.migration);
          const wanted = disksToRetain(vm);
          // The source's guest is asked only about a VM that keeps a copy (most migrations need no extra call).
          const guest = wanted.length > 0 ? await source.control.getGuest(guestName(vm!)) : undefined;
          return disksOnSource(wanted, guest);
        },
      });
    } catch (error) {
      // The run fails and is retried; the status writes held back since the outcome go first, unless this replica
      // may not act any more (a deposed run writes nothing: the next leader's run writes them).
      if (!run.stopped.aborted && !isDeposed(error))
        await settle().catch((err: unknown) => logger.warn({ err }, 'status write failed'));
      throw error;
    }
    // The guest runs again (or the hand-over ended otherwise): the status writes held back since the outcome go now.
    await settle();
    if (result.kind === 'postCopyFailedOnTarget') {
      throw new MigrationFailed(
        'PostCopyFailed',
        `post-copy from ${sourceNode} to ${targetNode} did not complete after the guest ran on ${targetNode} ` +
          `(${outcome.reason}). The ownership record names ${targetNode}; both QEMUs were stopped and the guest ` +
          `starts again from scratch on ${targetNode} by its restartPolicy (its running state is lost)`,
      );
    }
    if (result.kind === 'postCopyLost') {
      throw new MigrationFailed(
        'PostCopyFailed',
        `post-copy completed but ${targetNode} lost the guest before it resumed it (${result.why}); both QEMUs ` +
          `were stopped and the guest starts again from scratch on ${targetNode}, which the ownership record ` +
          `names, by its restartPolicy`,
      );
    }
    if (result.kind === 'targetStateLost') {
      throw new MigrationFailed(
        'TargetFailed',
        `${targetNode} lost its state after the hand-over (${result.why}); it may have run the guest, so ` +
          `${sourceNode}'s paused copy was released, not resumed, and the guest starts again on ${targetNode}, ` +
          `which the ownership record names, by its restartPolicy`,
      );
    }
    if (result.kind === 'resumedTargetLost') {
      throw new MigrationFailed(
        'TargetFailed',
        `${targetNode} lost the guest as it resumed it (${result.why}); the guest may have run there, so ` +
          `${sourceNode}'s paused copy was released, not resumed, and the guest starts again on ${targetNode}, ` +
          `which the ownership record names, by its restartPolicy`,
      );
    }
    if (result.kind === 'rolledBack' && result.targetLost !== undefined) {
      throw new MigrationFailed(
        'TargetFailed',
        `${targetNode} lost the guest before it resumed it (${result.targetLost.why}); the ownership record ` +
          (result.targetLost.recordMoved ? 'went back to' : 'stays with') +
          (result.sourceLost
            ? ` ${sourceNode}, whose QEMU is gone too: its restartPolicy decides whether it starts again`
            : ` ${sourceNode}, which runs the guest again`),
      );
    }
    if (result.kind === 'rolledBack') {
      const reason = result.completed
        ? 'HandoverFailed'
        : failureFromOutcome(outcome, run.cancelled !== undefined);
      const message = result.completed
        ? `the VM's ownership record no longer names ${sourceNode}; the target was aborted`
        : outcome.reason;
      if (reason === 'PostCopyFailed') {
        throw new MigrationFailed(
          reason,
          `post-copy from ${sourceNode} to ${targetNode} did not complete (${message}). Both QEMUs were stopped; the guest ` +
            `starts again from scratch on ${sourceNode} by its restartPolicy (its running state is lost)`,
        );
      }
      throw new MigrationFailed(
        reason,
        result.sourceLost
          ? `${message}; the guest's QEMU on ${sourceNode} is gone: its restartPolicy decides whether it starts again`
          : message,
      );
    }
    // The guest's pause as the operator's clock sees it: from the source's pause event (QEMU stopped the vCPUs at
    // pre-switchover) arriving here to ResumeTarget's reply (the target's vCPUs run). It covers QEMU's downtime
    // plus the hand-over (outcome, compare-and-swap, resume); it differs from the guest's true gap by the
    // difference of the two messages' delays. It is not the guest agent's heartbeat gap (the operator has no line
    // to the agent). Only known when this run saw the pause and did the resume. For post-copy the resume is the
    // post-copy switch's (the target ran the guest while the pages streamed), and the time it ran so until the
    // source's outcome is reported apart (postCopyMs).
    const switched =
      postCopy?.kind === 'resumed' && postCopy.committedHere && run.pausedSeenAtMs !== undefined
        ? postCopy
        : undefined;
    const sawSwitchover =
      switched !== undefined ||
      (result.committedHere && run.pausedSeenAtMs !== undefined && !outcome.postCopy);
    const resumedAtPerfMs = switched?.resumedAtPerfMs ?? result.resumedAtPerfMs;
    const guestGapMs = sawSwitchover ? Math.round(resumedAtPerfMs - run.pausedSeenAtMs!) : undefined;
    const postCopyMs =
      switched !== undefined && run.outcomeSeenAtUs !== undefined
        ? Math.max(0, Math.round((run.outcomeSeenAtUs - switched.resumedAtUs) / 1000))
        : undefined;
    // The same switchover step by step, on this operator's clock (switchover.ts); the same condition applies.
    let switchover: MigrationSwitchover | undefined;
    if (sawSwitchover) {
      const [sourceClock, targetClock] = await clocks;
      switchover = assembleSwitchover({
        sourceNode,
        targetNode,
        // Post-copy: the source's completion and outcome come long after the switch, and are not part of it.
        source:
          switched !== undefined && outcome.switchover
            ? { ...outcome.switchover, completedAtUnixUs: 0, outcomeAtUnixUs: 0 }
            : outcome.switchover,
        target: await targetSwitchover(target.migration, run.id, logger),
        sourceClock,
        targetClock,
        ...(switched !== undefined
          ? {
              ownershipRecordedAtUs: switched.recordedAtUs,
              resumeAcknowledgedAtUs: switched.resumedAtUs,
              note: 'post-copy: the target ran the guest from TargetResumed while the remaining pages streamed',
            }
          : {
              outcomeReceivedAtUs: run.outcomeSeenAtUs,
              ownershipRecordedAtUs: result.recordedAtUs,
              resumeAcknowledgedAtUs: result.resumedAtUs,
            }),
      });
    }
    this.assertMayAct(run);
    // What the source says it kept, also when an earlier run of this migration released it.
    const kept =
      result.sourceRetained.length > 0
        ? `; the source's copies are kept on ${sourceNode} (sourceCopyAfterMigration: Retain): ` +
          describeRetained(result.sourceRetained, await this.options.vms.getVm(run.migration), run.id)
        : '';
    await this.options.vms.releaseVm(run.migration, 'Succeeded', outcome.downtimeMs || undefined);
    if (kept !== '')
      await this.options.vms.recordEvent(run.migration, 'Normal', 'SourceCopyRetained', kept.slice(2));
    run.migration = await this.options.status.finish(
      run.migration,
      'Succeeded',
      undefined,
      `moved to ${targetNode} in ${outcome.durationMs} ms (QEMU downtime ${outcome.downtimeMs} ms)${kept}`,
      outcome,
      guestGapMs,
      switchover,
      postCopyMs,
    );
    logger.info(
      {
        resumeAfterOutcomeMs: result.resumedAtMs - outcomeAt,
        succeededAfterOutcomeMs: Date.now() - outcomeAt,
      },
      'migration succeeded',
    );
  }
}

/** How long the run waits for the target's FirstFrame watch to close (it ends by itself within its window). */
const FIRST_FRAME_WAIT_MS = 3_000;
const FIRST_FRAME_POLL_MS = 100;

/**
 * The target's switchover steps (its MigrationState after the resume), once its FirstFrame watch closed or
 * FIRST_FRAME_WAIT_MS passed; undefined when the target cannot tell (the timeline then lacks its steps).
 */
async function targetSwitchover(
  target: MigrationDaemonClient,
  id: string,
  logger: Logger,
): Promise<TargetSwitchover__Output | undefined> {
  const giveUpAt = Date.now() + FIRST_FRAME_WAIT_MS;
  for (;;) {
    let state: MigrationState__Output | undefined;
    try {
      state = await target.getMigration(id);
    } catch (error) {
      logger.info({ err: error }, "the target's switchover steps could not be read");
      return undefined;
    }
    const steps = state?.switchover ?? undefined;
    if (!steps?.firstFramePending || Date.now() >= giveUpAt) return steps;
    await new Promise((resolve) => setTimeout(resolve, FIRST_FRAME_POLL_MS));
  }
}

/** The VM's local disks that say `sourceCopyAfterMigration: Retain`. */
const disksToRetain = (vm: VirtualMachine | undefined): Disk[] =>
  (vm?.spec.disks ?? []).filter(
    (disk) => disk.storage === 'local' && disk.sourceCopyAfterMigration === 'Retain',
  );

/**
 * The names of the disks of `wanted` (disksToRetain) that are local disks of the guest the source runs (its spec is
 * what the daemon moved and knows: a disk added to or renamed in the VM since the guest started is not on the node,
 * and ReleaseSource refuses a name it does not know). Without the guest's spec, all of them.
 */
function disksOnSource(wanted: Disk[], guest: Guest__Output | undefined): string[] {
  const running = guest?.spec?.disks;
  return wanted
    .filter(
      (disk) =>
        running === undefined ||
        running.some(
          (candidate) => candidate.name === disk.name && candidate.storage === 'DISK_STORAGE_LOCAL',
        ),
    )
    .map((disk) => disk.name);
}

/**
 * "disk <name> at <path>" for each retained copy, named after the VM's local disk it came from: the one at that path,
 * else the one with that file name (the daemon names the file as it sees it).
 */
function describeRetained(paths: string[], vm: VirtualMachine | undefined, migrationId: string): string {
  const disks = (vm?.spec.disks ?? []).filter((disk) => disk.storage === 'local');
  return paths
    .map((copy) => {
      const disk =
        disks.find((candidate) => retainedImagePath(candidate.path, migrationId) === copy) ??
        disks.find(
          (candidate) => retainedImagePath(basename(candidate.path), migrationId) === basename(copy),
        );
      return disk ? `disk ${disk.name} at ${copy}` : `a copy at ${copy}`;
    })
    .join(', ');
}

/**
 * This replica may not act on the daemons any more: a daemon refused its fencing token (a newer leader called it),
 * or its own leadership or controller ended. The run then stops where it is and touches nothing.
 */
function isDeposed(error: unknown): boolean {
  return error instanceof FencedError || error instanceof NotLeadingError || isAbortError(error);
}

const isAbortError = (error: unknown): boolean => error instanceof Error && error.name === 'AbortError';

function wirePolicyOf(settings: ResolvedSettings) {
  try {
    return toWirePolicy(settings);
  } catch (error) {
    throw new MigrationFailed(
      'Internal',
      `the migration's settings cannot be applied: ${(error as Error).message}`,
    );
  }
}
