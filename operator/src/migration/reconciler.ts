// The Migration reconciler: admits a Migration (validation, target choice, policy, concurrency limits), then drives
// the two daemons through the phases and performs the exactly-once hand-over.
//
// Admission and deletion are level-triggered reconciles. The phases themselves are driven by one in-process run
// per Migration (keyed by UID; the daemons know it by the id of its current attempt, see daemonMigrationId): it
// follows the source's WatchMigration stream and mirrors it into status (phase changes at once, progress at most
// once per progressIntervalMs). A run that is lost with its process is resumed from Migration.status + the
// daemons' state by the next reconcile (decideRunStart): StartMigration is only issued while the source knows
// nothing of the migration, so a re-run never starts a second one, and a target prepared by a lost run (whose
// token is gone with it) is aborted and prepared afresh under a new attempt.
//
// Hand-over: the source's outcome COMPLETED leaves the guest loaded and paused on the target. One compare-and-swap
// on the VM's status (node source→target, epoch+1, resourceVersion precondition) decides the owner; only then is
// the target resumed and the source released. Otherwise the target is aborted, and the source resumed only while
// the VM's record still names it.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type {
  HypervisorNode,
  Migration,
  MigrationFailureReason,
  MigrationPhase,
  MigrationPolicy,
  MigrationProgress,
  MigrationStatus,
  VirtualMachine,
  VirtualMachineStatus,
} from '../../../crds/index.js';
import { isTerminalMigrationPhase } from '../../../crds/index.js';
import type { MigrationEvent__Output, MigrationOutcome__Output } from '../../../proto/index.js';
import { setCondition, type ConditionUpdate } from '../runtime/conditions.js';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.js';
import type { Informer } from '../runtime/informer.js';
import type { DaemonClientPool } from '../daemon/client-pool.js';
import { isGrpcError } from '../daemon/guest-client.js';
import { newMigrationToken, type MigrationDaemonClient } from '../daemon/migration-client.js';
import type { KubeClient } from '../../../kube/client.js';
import { isConflict, isNotFound } from '../../../kube/errors.js';
import type { EventRecorder } from '../../../kube/events.js';
import { addFinalizer, isBeingDeleted, metaTime, objectKey, removeFinalizer } from '../../../kube/objects.js';
import { Namespaces } from '../../../kube/resources.js';
import { isNodeReady } from '../placement/placement.js';
import type { MigrationMetrics } from './metrics.js';
import { resolveSettings, toWirePolicy } from './policy.js';
import { migrationsToPrune } from './retention.js';
import {
  ATTEMPT_ANNOTATION,
  PRE_DAEMON_PHASES,
  ProgressThrottle,
  UNSTARTED_PHASES,
  admit,
  closePhase,
  daemonMigrationId,
  decideHandOver,
  decideRunStart,
  failureFromOutcome,
  isLaterPhase,
  isWireTerminal,
  migrationAttempt,
  phaseFromWire,
  statusWithPhase,
  type ConcurrencyLimits,
} from './state.js';
import { Migrations, VirtualMachines } from '../../../crds/src/resources.js';

/** Keeps a Migration until the daemons let go of it (cancelled or handed over). */
export const MIGRATION_FINALIZER = 'tern.dev/migration';

export const MIGRATION_CONDITIONS = {
  /** False while waiting (reason: ClusterLimit, OutboundLimit, InboundLimit) or refused (the failure reason). */
  Scheduled: 'Scheduled',
  /** Unknown while it runs (reason: the phase); True when Succeeded; False when Failed or Aborted. */
  Completed: 'Completed',
} as const;

export interface MigrationReconcilerOptions {
  client: KubeClient;
  pool: DaemonClientPool;
  nodes: Informer<HypervisorNode>;
  vms: Informer<VirtualMachine>;
  migrations: Informer<Migration>;
  policies: Informer<MigrationPolicy>;
  events: EventRecorder;
  limits: ConcurrencyLimits;
  /** Least interval between two progress writes to Migration.status. */
  progressIntervalMs: number;
  /** How often a Migration waiting for a concurrency slot looks again (migration changes also wake it). */
  waitRetryMs?: number;
  /** Finished Migrations kept per VM; older finished ones are deleted. */
  historyLimit: number;
  metrics?: MigrationMetrics;
}

const WATCH_RETRIES = 5;
const WATCH_RETRY_MS = 1_000;
const CAS_RETRIES = 5;
const RUN_CHECK_MS = 5_000;

interface Run {
  /** The latest Migration this run wrote or read. */
  migration: Migration;
  /** The daemons' id of the current attempt. */
  id: string;
  /**
   * performance.now() when this run saw the source pause the guest (Quiescing, or Freezing without it) as it
   * happened; unset when the pause came before this run (replayed history).
   */
  pausedSeenAtMs?: number;
  cancelled: boolean;
  /** The controller stopped (shutdown, lost leadership): the run lets go; the next leader resumes it. */
  stopped: AbortSignal;
  /** Set once StartMigration returned: cancelling must go through the source daemon. */
  source?: MigrationDaemonClient;
  done: Promise<void>;
}

class MigrationFailed extends Error {
  constructor(
    readonly reason: MigrationFailureReason,
    message: string,
  ) {
    super(message);
  }
}

export class MigrationReconciler {
  private readonly runs = new Map<string, Run>();

  constructor(private readonly options: MigrationReconcilerOptions) {}

  readonly reconcile = async (
    request: ReconcileRequest,
    context: ReconcileContext,
  ): Promise<ReconcileResult> => {
    let migration: Migration;
    try {
      migration = await this.options.client.get<Migration>(Migrations, request.name, request.namespace);
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    const phase = migration.status?.phase;
    if (isTerminalMigrationPhase(phase)) {
      await removeFinalizer(this.options.client, Migrations, migration, MIGRATION_FINALIZER);
      await this.pruneHistory(migration, context.logger);
      return;
    }
    const run = this.runs.get(migration.metadata.uid!);
    if (isBeingDeleted(migration)) {
      if (run) return void (await this.cancel(run, context.logger));
      if (PRE_DAEMON_PHASES.includes(phase)) {
        const aborted = await this.finish(migration, 'Aborted', 'Cancelled', 'deleted before it started');
        await removeFinalizer(this.options.client, Migrations, aborted, MIGRATION_FINALIZER);
        return;
      }
      // Deleted while no run holds it (this process restarted, or the run broke): resume it cancelled.
      this.startRun(migration, context, true);
      return { requeueAfterMs: RUN_CHECK_MS };
    }
    // Looked at again every RUN_CHECK_MS: a run that broke on an error is resumed from status and the daemons.
    if (run) return { requeueAfterMs: RUN_CHECK_MS };
    migration = await addFinalizer(this.options.client, Migrations, migration, MIGRATION_FINALIZER);
    if (phase === undefined || phase === 'Pending') return this.admit(migration, context);
    this.startRun(migration, context, false);
    return { requeueAfterMs: RUN_CHECK_MS };
  };

  /** Deletes the VM's finished Migrations beyond the history limit. */
  private async pruneHistory(finished: Migration, logger: Logger): Promise<void> {
    const sameVm = this.options.migrations
      .list()
      .filter(
        (m) => m.metadata.namespace === finished.metadata.namespace && m.spec.vmName === finished.spec.vmName,
      );
    for (const old of migrationsToPrune(sameVm, this.options.historyLimit)) {
      try {
        await this.options.client.delete(Migrations, old.metadata.name!, old.metadata.namespace);
        logger.info({ pruned: old.metadata.name }, 'finished Migration deleted (history limit)');
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
  }

  /** Pending Migrations of the cluster: any Migration change may free a slot or settle who came first. */
  readonly pendingKeys = (): string[] =>
    this.options.migrations
      .list()
      .filter((m) => !m.status?.phase || m.status.phase === 'Pending')
      .map((m) => objectKey(m));

  private async admit(migration: Migration, context: ReconcileContext): Promise<ReconcileResult> {
    const logger = context.logger;
    const vm = await this.getVm(migration);
    const admission = admit({
      migration,
      vm,
      nodes: this.options.nodes.list(),
      vms: this.options.vms.list(),
      migrations: this.knownMigrations(),
      limits: this.options.limits,
    });
    const now = new Date();
    if (admission.kind === 'fail') {
      logger.info({ reason: admission.reason }, admission.message);
      await this.finish(migration, 'Failed', admission.reason, admission.message);
      return;
    }
    if (admission.kind === 'wait') {
      await this.writeStatus(migration, (status) => ({
        ...statusWithPhase(status, 'Pending', now),
        sourceNode: admission.source,
        targetNode: admission.target,
        conditions: this.conditions(status, migration, [
          scheduled('False', admission.reason, admission.message),
          completed('Unknown', 'Pending', admission.message),
        ]),
      }));
      return { requeueAfterMs: this.options.waitRetryMs ?? 2_000 };
    }
    const { settings, sources } = await this.settingsFor(migration, vm!);
    const scheduledMigration = await this.writeStatus(migration, (status) => ({
      ...statusWithPhase(statusWithPhase(status, 'Pending', now), 'Scheduling', now),
      sourceNode: admission.source,
      targetNode: admission.target,
      message: `${admission.message}; settings ${JSON.stringify(settings)}`,
      conditions: this.conditions(status, migration, [
        scheduled('True', 'Scheduled', admission.message),
        completed('Unknown', 'Scheduling', admission.message),
      ]),
    }));
    logger.info({ source: admission.source, target: admission.target, settings, sources }, 'scheduled');
    await this.options.events.record(scheduledMigration, 'Normal', 'Scheduling', admission.message);
    this.startRun(scheduledMigration, context, false);
    return { requeueAfterMs: RUN_CHECK_MS };
  }

  /** The informer's Migrations, with the newer copies this process's runs hold (the informer may lag). */
  private knownMigrations(): Migration[] {
    const byUid = new Map(this.options.migrations.list().map((m) => [m.metadata.uid, m]));
    for (const run of this.runs.values()) byUid.set(run.migration.metadata.uid, run.migration);
    return [...byUid.values()];
  }

  private async settingsFor(migration: Migration, vm: VirtualMachine) {
    const policies = this.options.policies.list();
    let namespaceLabels: Record<string, string> | undefined;
    if (policies.some((p) => p.spec.namespaceSelector)) {
      const namespace = await this.options.client.get(Namespaces, vm.metadata.namespace!);
      namespaceLabels = namespace.metadata.labels;
    }
    return resolveSettings(migration, vm, policies, namespaceLabels);
  }

  private startRun(migration: Migration, context: ReconcileContext, cancelled: boolean): void {
    const uid = migration.metadata.uid!;
    const id = daemonMigrationId(uid, migrationAttempt(migration));
    const run: Run = { migration, id, cancelled, stopped: context.signal, done: Promise.resolve() };
    const log = context.logger.child({ migration: uid });
    log.info({ phase: migration.status?.phase, id, cancelled }, 'migration run started');
    run.done = this.drive(run, log)
      .catch((error: unknown) =>
        log.error({ err: error }, 'migration run failed; the next reconcile resumes it'),
      )
      .finally(() => this.runs.delete(uid));
    this.runs.set(uid, run);
  }

  private async cancel(run: Run, logger: Logger): Promise<void> {
    if (run.cancelled) return;
    run.cancelled = true;
    // Not started yet: the run checks the flag before StartMigration and right after it.
    if (run.source) await this.cancelOnSource(run, run.source, logger);
  }

  private async cancelOnSource(run: Run, source: MigrationDaemonClient, logger: Logger): Promise<void> {
    try {
      await source.cancelMigration(run.id, 'the Migration was deleted');
    } catch (error) {
      // Past the point of no return (device state crossed): the hand-over finishes the migration.
      if (!isGrpcError(error, grpc.status.FAILED_PRECONDITION)) throw error;
      logger.info({ err: error }, 'too late to cancel; the migration completes');
    }
  }

  /** One migration from its current phase to a terminal one. */
  private async drive(run: Run, logger: Logger): Promise<void> {
    const { sourceNode, targetNode } = run.migration.status!;
    const source = this.daemon(sourceNode!);
    const target = this.daemon(targetNode!);
    try {
      const phase = run.migration.status?.phase;
      if (!source || !target) {
        const missing = !source ? sourceNode : targetNode;
        // Once the daemons hold the migration, a node that is not Ready now is waited for, not given up on.
        if (phase !== 'Scheduling') throw new Error(`${missing} is not Ready; retrying`);
        if (run.cancelled) throw new MigrationFailed('Cancelled', `deleted while ${missing} is not Ready`);
        throw new MigrationFailed(!source ? 'SourceFailed' : 'TargetNotReady', `${missing} is not Ready`);
      }
      const sourceKnows = (await source.migration.getMigration(run.id)) !== undefined;
      const targetKnows = !sourceKnows && (await target.migration.getMigration(run.id)) !== undefined;
      const start = decideRunStart({ phase, sourceKnows, targetKnows, cancelled: run.cancelled });
      if (start.kind === 'cancel')
        throw new MigrationFailed('Cancelled', 'deleted before the source started');
      if (start.kind === 'fail') throw new MigrationFailed(start.reason, start.message);
      if (start.kind === 'initialize') await this.initialize(run, source, target, start.freshAttempt, logger);
      run.source = source.migration;
      if (run.cancelled) await this.cancelOnSource(run, source.migration, logger);
      const outcome = await this.follow(run, source.migration, logger);
      await this.handOver(run, outcome, source.migration, target.migration, logger);
    } catch (error) {
      if (!(error instanceof MigrationFailed)) throw error;
      logger.warn({ reason: error.reason }, error.message);
      if (target) await this.abortAttempts(run, target.migration, migrationAttempt(run.migration) + 1);
      await this.releaseVm(run.migration, error.reason === 'Cancelled' ? 'Aborted' : 'Failed');
      run.migration = await this.finish(
        run.migration,
        error.reason === 'Cancelled' ? 'Aborted' : 'Failed',
        error.reason,
        error.message,
      );
    }
  }

  private daemon(nodeName: string) {
    const node = this.options.nodes.get(nodeName);
    if (!node || !isNodeReady(node)) return undefined;
    const endpoint = node.status!.endpoint!;
    return {
      control: this.options.pool.client(nodeName, endpoint),
      migration: this.options.pool.migrationClient(nodeName, endpoint),
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
    source: NonNullable<ReturnType<MigrationReconciler['daemon']>>,
    target: NonNullable<ReturnType<MigrationReconciler['daemon']>>,
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
    const vm = await this.lockVm(migration);
    const startedAt = new Date();
    const guest = await source.control.getGuest(vm.metadata.name!);
    if (!guest || guest.spec?.uuid !== vm.metadata.uid) {
      throw new MigrationFailed('VMNotRunning', `${sourceNode} has no guest of ${vm.metadata.name}`);
    }
    const { settings } = await this.settingsFor(migration, vm);
    const token = newMigrationToken();
    let dataEndpoint: string;
    try {
      ({ dataEndpoint } = await target.migration.prepareIncoming({
        id,
        source: guest,
        token,
        postCopy: settings.allowPostCopy,
        multifdChannels: settings.multifdChannels,
      }));
    } catch (error) {
      if (isGrpcError(error, grpc.status.FAILED_PRECONDITION))
        throw new MigrationFailed('IncompatibleTarget', error.details);
      if (isGrpcError(error, grpc.status.ALREADY_EXISTS) || isGrpcError(error, grpc.status.INVALID_ARGUMENT))
        throw new MigrationFailed('TargetFailed', error.details);
      throw error;
    }
    // Written once the target is prepared, so that this write separates PrepareIncoming from StartMigration: a
    // run lost in between leaves a prepared target that decideRunStart finds and replaces.
    if (run.migration.status?.phase !== 'Initializing') {
      run.migration = await this.enter(run.migration, 'Initializing', startedAt, `${targetNode} prepared`);
    }
    if (run.cancelled) throw new MigrationFailed('Cancelled', 'deleted during Initializing');
    run.stopped.throwIfAborted();
    try {
      await source.migration.startMigration({
        id,
        guest: vm.metadata.name!,
        targetDataEndpoint: dataEndpoint,
        token,
        policy: toWirePolicy(settings),
      });
    } catch (error) {
      if (
        isGrpcError(error, grpc.status.FAILED_PRECONDITION) ||
        isGrpcError(error, grpc.status.INVALID_ARGUMENT) ||
        isGrpcError(error, grpc.status.NOT_FOUND)
      )
        throw new MigrationFailed('SourceFailed', error.details);
      throw error;
    }
    logger.info({ dataEndpoint }, 'migration started');
  }

  /** Mirrors the source's WatchMigration stream into status until the outcome; re-attaches after a broken stream. */
  private async follow(
    run: Run,
    source: MigrationDaemonClient,
    logger: Logger,
  ): Promise<MigrationOutcome__Output> {
    const id = run.id;
    const throttle = new ProgressThrottle(this.options.progressIntervalMs);
    let outcome: MigrationOutcome__Output | undefined;
    let progress: MigrationProgress | undefined;
    let writes: Promise<unknown> = Promise.resolve();
    let pendingFlush: NodeJS.Timeout | undefined;
    const serial = (write: () => Promise<unknown>) => {
      writes = writes.then(write).catch((err: unknown) => logger.warn({ err }, 'status write failed'));
    };
    const flushProgress = () => {
      pendingFlush = undefined;
      if (!throttle.take(Date.now())) return;
      const snapshot = progress;
      serial(async () => {
        run.migration = await this.writeStatus(run.migration, (status) => ({
          ...status,
          progress: snapshot,
        }));
      });
    };
    const onEvent = (event: MigrationEvent__Output) => {
      if (event.event === 'phase' && event.phase) {
        const at = new Date(event.atUnixMs);
        if (isWireTerminal(event.phase.to)) {
          serial(async () => {
            run.migration = await this.writeStatus(run.migration, (status) => ({
              ...status,
              phaseTimings: closePhase(status.phaseTimings, at),
            }));
          });
          return;
        }
        const phase = phaseFromWire(event.phase.to);
        if (!phase) return;
        // Seen as it happens only while the status is still before the pause (not a replay after a restart).
        if (
          (phase === 'Quiescing' || phase === 'Freezing') &&
          run.pausedSeenAtMs === undefined &&
          isLaterPhase('Quiescing', run.migration.status?.phase)
        ) {
          run.pausedSeenAtMs = performance.now();
        }
        const snapshot = progress;
        throttle.wrote(Date.now());
        serial(async () => {
          if (!isLaterPhase(phase, run.migration.status?.phase)) return;
          run.migration = await this.enter(run.migration, phase, at, event.phase!.reason, snapshot);
        });
      } else if (event.event === 'progress' && event.progress) {
        progress = toProgress(event.progress);
        if (!pendingFlush) pendingFlush = setTimeout(flushProgress, throttle.delayMs(Date.now()));
      } else if (event.event === 'outcome' && event.outcome) {
        outcome = event.outcome;
      }
    };
    const stop = new AbortController();
    try {
      for (let attempt = 0; outcome === undefined; attempt++) {
        try {
          await source.watch(
            id,
            Math.min(this.options.progressIntervalMs, 1_000),
            onEvent,
            AbortSignal.any([stop.signal, run.stopped]),
          );
        } catch (error) {
          if (attempt >= WATCH_RETRIES || run.stopped.aborted) throw error;
          logger.warn({ err: error }, 'watch broke; re-attaching');
        }
        run.stopped.throwIfAborted();
        if (outcome === undefined) await new Promise((resolve) => setTimeout(resolve, WATCH_RETRY_MS));
      }
    } finally {
      stop.abort();
      clearTimeout(pendingFlush);
      await writes;
    }
    if (progress)
      run.migration = await this.writeStatus(run.migration, (status) => ({ ...status, progress }));
    return outcome;
  }

  private async handOver(
    run: Run,
    outcome: MigrationOutcome__Output,
    source: MigrationDaemonClient,
    target: MigrationDaemonClient,
    logger: Logger,
  ): Promise<void> {
    const id = run.id;
    const { sourceNode, targetNode } = run.migration.status! as Required<MigrationStatus>;
    // A replica that is no longer the leader must not take the ownership decision.
    run.stopped.throwIfAborted();
    const completed = outcome.result === 'RESULT_COMPLETED';
    const outcomeAt = Date.now();
    let vm = await this.getVm(run.migration);
    let decision = decideHandOver(completed, vm?.status?.node, sourceNode, targetNode);
    const committedHere = decision.kind === 'commit';
    for (let attempt = 0; decision.kind === 'commit' && vm; attempt++) {
      try {
        vm = await this.options.client.replaceStatus<VirtualMachine>(VirtualMachines, {
          ...vm,
          status: { ...vm.status, node: targetNode, epoch: (vm.status?.epoch ?? 0) + 1 },
        });
        decision = { kind: 'finish' };
        logger.info({ epoch: vm.status?.epoch }, 'ownership moved to the target');
      } catch (error) {
        // A write that is not about ownership (a label, a condition) also bumps resourceVersion: read and retry
        // while the record still names the source; once it changed, the migration rolls back.
        if (!isConflict(error) || attempt >= CAS_RETRIES) throw error;
        vm = await this.getVm(run.migration);
        decision = decideHandOver(completed, vm?.status?.node, sourceNode, targetNode);
      }
    }
    if (decision.kind === 'finish') {
      // Only a hand-over resumed after a restart can find a step already done.
      const resumed = committedHere ? undefined : await target.getMigration(id);
      if (resumed?.stage !== 'MIGRATION_STAGE_RESUMED') await target.resumeTarget(id, targetNode);
      const resumedAt = Date.now();
      // The guest's pause as the operator's clock sees it: from the source's pause event (QEMU stopped the vCPUs
      // at pre-switchover) arriving here to ResumeTarget's reply (the target's vCPUs run). It covers QEMU's
      // downtime plus the hand-over (outcome, compare-and-swap, resume); it differs from the guest's true gap by
      // the difference of the two messages' delays. It is not the guest agent's heartbeat gap (the operator has
      // no line to the agent). Only known when this run saw the pause and did the resume, and not for post-copy
      // (the target runs before the outcome).
      const guestGapMs =
        committedHere && run.pausedSeenAtMs !== undefined && !outcome.postCopy
          ? Math.round(performance.now() - run.pausedSeenAtMs)
          : undefined;
      const released = committedHere ? undefined : await source.getMigration(id);
      if (released?.stage !== 'MIGRATION_STAGE_RELEASED') await source.releaseSource(id, targetNode);
      await this.releaseVm(run.migration, 'Succeeded', outcome.downtimeMs || undefined);
      run.migration = await this.finish(
        run.migration,
        'Succeeded',
        undefined,
        `moved to ${targetNode} in ${outcome.durationMs} ms (QEMU downtime ${outcome.downtimeMs} ms)`,
        outcome,
        guestGapMs,
      );
      logger.info(
        { resumeAfterOutcomeMs: resumedAt - outcomeAt, succeededAfterOutcomeMs: Date.now() - outcomeAt },
        'migration succeeded',
      );
      return;
    }
    await target.abortIncoming(id);
    // (A 'commit' left here means the VM vanished: nothing names the source any more.)
    if (decision.kind === 'rollback' && decision.resumeSource) {
      const state = await source.getMigration(id);
      if (state?.stage !== 'MIGRATION_STAGE_SOURCE_RESUMED') await source.resumeSource(id, sourceNode);
    }
    const reason = completed ? 'HandoverFailed' : failureFromOutcome(outcome, run.cancelled);
    const message = completed
      ? `the VM's ownership record no longer names ${sourceNode}; the target was aborted`
      : outcome.reason;
    throw new MigrationFailed(reason, message);
  }

  /** Marks the VM as being moved by this Migration (compare-and-swap); refuses when it is no longer movable. */
  private async lockVm(migration: Migration): Promise<VirtualMachine> {
    const name = migration.metadata.name!;
    for (let attempt = 0; ; attempt++) {
      const vm = await this.getVm(migration);
      if (!vm) throw new MigrationFailed('VMNotFound', `VirtualMachine ${migration.spec.vmName} is gone`);
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
      try {
        const locked = await this.options.client.replaceStatus<VirtualMachine>(VirtualMachines, {
          ...vm,
          status: { ...status, phase: 'Migrating', activeMigration: name },
        });
        await this.options.events.record(
          locked,
          'Normal',
          'Migrating',
          `Migration ${name}: ${status.node} → ${migration.status?.targetNode}`,
        );
        return locked;
      } catch (error) {
        if (!isConflict(error) || attempt >= CAS_RETRIES) throw error;
      }
    }
  }

  /** Gives the VM back to the VM reconciler (Running on whatever node its record names) with lastMigration. */
  private async releaseVm(
    migration: Migration,
    result: 'Succeeded' | 'Failed' | 'Aborted',
    downtimeMs?: number,
  ): Promise<void> {
    const name = migration.metadata.name!;
    for (let attempt = 0; ; attempt++) {
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
      try {
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
        return;
      } catch (error) {
        if (!isConflict(error) || attempt >= CAS_RETRIES) throw error;
      }
    }
  }

  private async enter(
    migration: Migration,
    phase: MigrationPhase,
    at: Date,
    message: string,
    progress?: MigrationProgress,
  ): Promise<Migration> {
    const updated = await this.writeStatus(migration, (status) => ({
      ...statusWithPhase(status, phase, at),
      ...(progress ? { progress } : {}),
      conditions: this.conditions(status, migration, [completed('Unknown', phase, message)]),
    }));
    await this.options.events.record(updated, 'Normal', phase, message);
    return updated;
  }

  /** Writes a terminal phase with its reason, condition and Event. */
  private async finish(
    migration: Migration,
    phase: 'Succeeded' | 'Failed' | 'Aborted',
    reason: MigrationFailureReason | undefined,
    message: string,
    outcome?: MigrationOutcome__Output,
    guestGapMs?: number,
  ): Promise<Migration> {
    const now = new Date();
    const updated = await this.writeStatus(migration, (status) => {
      const next: MigrationStatus = {
        ...statusWithPhase(status, phase, now),
        message,
        conditions: this.conditions(status, migration, [
          ...(phase === 'Failed' && UNSTARTED_PHASES.includes(status.phase)
            ? [scheduled('False', reason!, message)]
            : []),
          completed(phase === 'Succeeded' ? 'True' : 'False', reason ?? phase, message),
        ]),
      };
      if (reason) next.failureReason = reason;
      if (outcome?.result === 'RESULT_COMPLETED') {
        // QEMU's final figures, not the last sampled progress.
        if (outcome.downtimeMs > 0) next.downtime = { ...next.downtime, qemuMs: outcome.downtimeMs };
        if (guestGapMs !== undefined) next.downtime = { ...next.downtime, guestGapMs };
        next.progress = {
          ...next.progress,
          round: outcome.rounds,
          transferredBytes: outcome.transferredBytes,
          remainingBytes: 0,
          percent: 100,
        };
      }
      return next;
    });
    await this.options.events.record(
      updated,
      phase === 'Succeeded' ? 'Normal' : 'Warning',
      reason ?? phase,
      message,
    );
    this.options.metrics?.observeFinished(updated);
    return updated;
  }

  private conditions(status: MigrationStatus, migration: Migration, updates: ConditionUpdate[]) {
    let conditions = status.conditions;
    for (const update of updates) {
      conditions = setCondition(conditions, { ...update, observedGeneration: migration.metadata.generation });
    }
    return conditions;
  }

  /** Replaces the status (compare-and-swap); on a conflict reads the Migration again and re-applies `change`. */
  private async writeStatus(
    migration: Migration,
    change: (status: MigrationStatus) => MigrationStatus,
  ): Promise<Migration> {
    let current = migration;
    for (let attempt = 0; ; attempt++) {
      const status = { ...change(current.status ?? {}), observedGeneration: current.metadata.generation };
      try {
        return await this.options.client.replaceStatus<Migration>(Migrations, { ...current, status });
      } catch (error) {
        if (!isConflict(error) || attempt >= CAS_RETRIES) throw error;
        current = await this.options.client.get<Migration>(
          Migrations,
          current.metadata.name!,
          current.metadata.namespace,
        );
      }
    }
  }

  private async getVm(migration: Migration): Promise<VirtualMachine | undefined> {
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
}

function scheduled(status: 'True' | 'False', reason: string, message: string): ConditionUpdate {
  return { type: MIGRATION_CONDITIONS.Scheduled, status, reason, message };
}

function completed(status: 'True' | 'False' | 'Unknown', reason: string, message: string): ConditionUpdate {
  return { type: MIGRATION_CONDITIONS.Completed, status, reason, message };
}

function toProgress(wire: NonNullable<MigrationEvent__Output['progress']>): MigrationProgress {
  const total = wire.totalBytes;
  const remaining = wire.remainingBytes;
  return {
    round: wire.round,
    transferredBytes: wire.transferredBytes,
    remainingBytes: remaining,
    totalBytes: total,
    dirtyBytesPerSecond: wire.dirtyRateBytesPerSec,
    throughputBytesPerSecond: Math.round((wire.throughputMbps * 1_000_000) / 8),
    expectedDowntimeMs: wire.expectedDowntimeMs,
    percent: total > 0 ? Math.min(100, Math.max(0, Math.round((100 * (total - remaining)) / total))) : 0,
  };
}
