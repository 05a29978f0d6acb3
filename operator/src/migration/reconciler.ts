// The Migration reconciler: admits a Migration (validation, target choice, policy, concurrency limits), then
// drives the two daemons through the phases and performs the exactly-once hand-over.
//
// Admission and deletion are level-triggered reconciles (here), as are the finalizer and the bounded history of
// finished Migrations per VM. The phases themselves are driven by one in-process run per Migration (run.ts), kept
// in the registry of runs here: a Migration with no run in this process (a new leader, a run that broke on an
// error) gets one from its status and the daemons' state, and deleting a Migration cancels its run.
//
// The other modules: sequence.ts the calls to the two daemons (shared with the daemon tests), ownership.ts the
// VM's lock and ownership record, status.ts Migration.status and its conditions, state.ts the decisions without I/O.
import type { Logger } from 'pino';
import type { HypervisorNode, Migration, MigrationPolicy, VirtualMachine } from '../../../crds/index.js';
import { isTerminalMigrationPhase } from '../../../crds/index.js';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.js';
import type { Informer } from '../runtime/informer.js';
import type { DaemonClientPool } from '../daemon/client-pool.js';
import type { KubeClient } from '../../../kube/client.js';
import { isNotFound } from '../../../kube/errors.js';
import type { EventRecorder } from '../../../kube/events.js';
import { addFinalizer, isBeingDeleted, objectKey, removeFinalizer } from '../../../kube/objects.js';
import { Namespaces } from '../../../kube/resources.js';
import { isNodeReady } from '../placement/placement.js';
import type { MigrationMetrics } from './metrics.js';
import { VmOwnership } from './ownership.js';
import { policyViolationMessage, resolveSettings } from './policy.js';
import { migrationsToPrune } from './retention.js';
import { endOnNodeLoss, lostNodesOf } from './node-loss.js';
import { MigrationRunner, type Run } from './run.js';
import {
  MigrationFailed,
  PRE_DAEMON_PHASES,
  admit,
  daemonMigrationId,
  migrationAttempt,
  runRetryDelayMs,
  statusWithPhase,
  type Admission,
  type ConcurrencyLimits,
} from './state.js';
import {
  MIGRATION_CONDITIONS,
  MigrationStatusWriter,
  completed,
  retrying,
  scheduled,
  withConditions,
} from './status.js';
import { Migrations } from '../../../crds/index.js';

/** Keeps a Migration until the daemons let go of it (cancelled or handed over). */
export const MIGRATION_FINALIZER = 'tern.dev/migration';

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

const RUN_CHECK_MS = 5_000;

export class MigrationReconciler {
  private readonly runs = new Map<string, Run>();
  /** Migrations (by UID) whose runs failed in a row: the next run waits for its backoff. */
  private readonly failures = new Map<string, { count: number; retryAt: number; last: string }>();

  private readonly status: MigrationStatusWriter;
  private readonly ownership: VmOwnership;
  private readonly runner: MigrationRunner;

  constructor(private readonly options: MigrationReconcilerOptions) {
    const { client, events, metrics, pool, nodes, progressIntervalMs } = options;
    this.status = new MigrationStatusWriter({ client, events, metrics });
    this.ownership = new VmOwnership({ client, events });
    this.runner = new MigrationRunner({
      client,
      pool,
      nodes,
      status: this.status,
      vms: this.ownership,
      settingsFor: (migration, vm) => this.grantedSettings(migration, vm),
      progressIntervalMs,
    });
  }

  readonly reconcile = async (
    request: ReconcileRequest,
    context: ReconcileContext,
  ): Promise<ReconcileResult> => {
    // Most reconciles find nothing to do (a Pending Migration still waiting for a slot, a run's periodic check, a
    // finished Migration): the watch cache answers those without a request. Whatever acts (admits, fails,
    // cancels, starts a run, removes the finalizer) reads the Migration from the API below.
    const cached = this.options.migrations.get(request.key);
    const idle = cached !== undefined ? await this.idleFromCache(cached, context.logger) : undefined;
    if (idle !== undefined) return idle.result;
    let migration: Migration;
    try {
      migration = await this.options.client.get<Migration>(Migrations, request.name, request.namespace);
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    const phase = migration.status?.phase;
    if (isTerminalMigrationPhase(phase)) {
      this.failures.delete(migration.metadata.uid!);
      await removeFinalizer(this.options.client, Migrations, migration, MIGRATION_FINALIZER);
      await this.pruneHistory(migration, context.logger);
      return;
    }
    const run = this.runs.get(migration.metadata.uid!);
    // A node of the migration is lost: once no run holds it (a run cannot reach the lost node and ends), it ends
    // here (node-loss.ts).
    const lost = lostNodesOf(migration, (name) => this.options.nodes.get(name));
    if (lost.length > 0 && !PRE_DAEMON_PHASES.includes(phase)) {
      if (run) return { requeueAfterMs: RUN_CHECK_MS };
      await endOnNodeLoss({
        migration,
        lost,
        daemon: (name) => this.migrationDaemon(name),
        vms: this.ownership,
        status: this.status,
        logger: context.logger,
      });
      return;
    }
    // A run that failed is started again only after its backoff (level-triggered reconciles come sooner); a
    // cancel does not wait for it.
    const failed = this.failures.get(migration.metadata.uid!);
    const cancelled = this.cancelledBecause(migration);
    if (!run && failed && cancelled === undefined && Date.now() < failed.retryAt) {
      return { requeueAfterMs: failed.retryAt - Date.now() };
    }
    if (cancelled !== undefined) {
      if (run) {
        // Sent again on every reconcile until the source acknowledged it (see MigrationRunner.cancel).
        await this.runner.cancel(run, cancelled, context.logger);
        return { requeueAfterMs: RUN_CHECK_MS };
      }
      if (PRE_DAEMON_PHASES.includes(phase)) {
        const aborted = await this.status.finish(
          migration,
          'Aborted',
          'Cancelled',
          `${cancelled} before it started`,
        );
        await removeFinalizer(this.options.client, Migrations, aborted, MIGRATION_FINALIZER);
        return;
      }
      // Cancelled while no run holds it (this process restarted, or the run broke): resume it cancelled.
      this.startRun(migration, context, cancelled);
      return { requeueAfterMs: RUN_CHECK_MS };
    }
    // Looked at again every RUN_CHECK_MS: a run that broke on an error is resumed from status and the daemons.
    if (run) return { requeueAfterMs: RUN_CHECK_MS };
    migration = await addFinalizer(this.options.client, Migrations, migration, MIGRATION_FINALIZER);
    if (phase === undefined || phase === 'Pending') return this.admit(migration, context);
    this.startRun(migration, context);
    return { requeueAfterMs: RUN_CHECK_MS };
  };

  /**
   * What the reconcile of `cached` (the watch cache's copy) returns when it has nothing to do, or undefined when it
   * may have to act (then it reads the Migration from the API). A stale copy is safe here: every change of the
   * Migration, of its VM and of the other Migrations arrives as an informer event that wakes this key again.
   */
  private async idleFromCache(
    cached: Migration,
    logger: Logger,
  ): Promise<{ result: ReconcileResult } | undefined> {
    const uid = cached.metadata.uid!;
    const phase = cached.status?.phase;
    if (isTerminalMigrationPhase(phase)) {
      if (cached.metadata.finalizers?.includes(MIGRATION_FINALIZER)) return undefined;
      this.failures.delete(uid);
      await this.pruneHistory(cached, logger);
      return { result: undefined };
    }
    if (this.cancelledBecause(cached) !== undefined) return undefined;
    if (this.runs.has(uid)) return { result: { requeueAfterMs: RUN_CHECK_MS } };
    if (phase !== 'Pending' || !cached.metadata.finalizers?.includes(MIGRATION_FINALIZER)) return undefined;
    const failed = this.failures.get(uid);
    if (failed && Date.now() < failed.retryAt)
      return { result: { requeueAfterMs: failed.retryAt - Date.now() } };
    // Still waiting for a slot, as status already says: nothing to write. (A MigrationPolicy changed meanwhile is
    // checked when the Migration is admitted, and again when its run starts.)
    const admission = this.admission(cached, this.options.vms.get(vmKeyOf(cached)));
    if (admission.kind === 'wait' && waitRecorded(cached, admission))
      return { result: { requeueAfterMs: this.waitRetryMs } };
    return undefined;
  }

  private get waitRetryMs(): number {
    return this.options.waitRetryMs ?? 2_000;
  }

  private admission(migration: Migration, vm: VirtualMachine | undefined) {
    return admit({
      migration,
      vm,
      nodes: this.options.nodes.list(),
      vms: this.options.vms.list(),
      migrations: this.knownMigrations(),
      limits: this.options.limits,
    });
  }

  /**
   * Why an unfinished Migration is to be cancelled: it is being deleted, or its VirtualMachine is (a VM being
   * deleted is not moved; its guest stays where it runs, and the VM reconciler deletes it there).
   */
  private cancelledBecause(migration: Migration): string | undefined {
    if (isBeingDeleted(migration)) return 'the Migration was deleted';
    const vm = this.options.vms.get(`${migration.metadata.namespace}/${migration.spec.vmName}`);
    if (vm !== undefined && isBeingDeleted(vm)) return 'the VirtualMachine is being deleted';
    return undefined;
  }

  /** A node's change (e.g. it is lost) concerns the unfinished Migrations from or to it. */
  readonly migrationKeysForNode = (node: HypervisorNode): string[] =>
    this.options.migrations
      .list()
      .filter(
        (m) =>
          !isTerminalMigrationPhase(m.status?.phase) &&
          (m.status?.sourceNode === node.metadata.name || m.status?.targetNode === node.metadata.name),
      )
      .map((m) => objectKey(m));

  private migrationDaemon(name: string) {
    const node = this.options.nodes.get(name);
    if (!node || !isNodeReady(node)) return undefined;
    return this.options.pool.migrationClient(name, node.status!.endpoint!);
  }

  /** A VM's change (e.g. its deletion) concerns the Migration that moves it. */
  readonly migrationKeysForVm = (vm: VirtualMachine): string[] =>
    vm.status?.activeMigration ? [`${vm.metadata.namespace}/${vm.status.activeMigration}`] : [];

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
    // A wait is decided from the VM cache (the status it writes only says why); scheduling and failing decide
    // from the VM as stored (its record names the source; the lock's compare-and-swap checks it again).
    let vm = this.options.vms.get(vmKeyOf(migration));
    let admission = this.admission(migration, vm);
    if (admission.kind !== 'wait') {
      vm = await this.ownership.getVm(migration);
      admission = this.admission(migration, vm);
    }
    const now = new Date();
    if (admission.kind === 'fail') {
      logger.info({ reason: admission.reason }, admission.message);
      await this.status.finish(migration, 'Failed', admission.reason, admission.message);
      return;
    }
    // Overrides above a MigrationPolicy ceiling are refused before the Migration waits or schedules.
    const { settings, sources, violations } = await this.settingsFor(migration, vm!);
    if (violations.length > 0) {
      const message = policyViolationMessage(violations);
      logger.info({ reason: 'PolicyViolation' }, message);
      await this.status.finish(migration, 'Failed', 'PolicyViolation', message);
      return;
    }
    if (admission.kind === 'wait') {
      if (waitRecorded(migration, admission)) return { requeueAfterMs: this.waitRetryMs };
      await this.status.write(migration, (status) => ({
        ...statusWithPhase(status, 'Pending', now),
        sourceNode: admission.source,
        targetNode: admission.target,
        conditions: withConditions(status, migration, [
          scheduled('False', admission.reason, admission.message),
          completed('Unknown', 'Pending', admission.message),
        ]),
      }));
      return { requeueAfterMs: this.waitRetryMs };
    }
    const scheduledMigration = await this.status.write(migration, (status) => ({
      ...statusWithPhase(statusWithPhase(status, 'Pending', now), 'Scheduling', now),
      sourceNode: admission.source,
      targetNode: admission.target,
      message: `${admission.message}; settings ${JSON.stringify(settings)}`,
      conditions: withConditions(status, migration, [
        scheduled('True', 'Scheduled', admission.message),
        completed('Unknown', 'Scheduling', admission.message),
      ]),
    }));
    logger.info({ source: admission.source, target: admission.target, settings, sources }, 'scheduled');
    await this.options.events.record(scheduledMigration, 'Normal', 'Scheduling', admission.message);
    this.startRun(scheduledMigration, context);
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

  /** The run's settings; a policy that changed since admission and refuses the overrides fails the Migration. */
  private async grantedSettings(migration: Migration, vm: VirtualMachine) {
    const resolution = await this.settingsFor(migration, vm);
    if (resolution.violations.length > 0) {
      throw new MigrationFailed('PolicyViolation', policyViolationMessage(resolution.violations));
    }
    return resolution;
  }

  private startRun(migration: Migration, context: ReconcileContext, cancelled?: string): void {
    const uid = migration.metadata.uid!;
    const id = daemonMigrationId(uid, migrationAttempt(migration));
    const failed = this.failures.get(uid);
    const run: Run = {
      migration,
      id,
      cancelled,
      failedRuns: failed?.count ?? 0,
      lastFailure: failed?.last,
      stopped: context.signal,
      done: Promise.resolve(),
    };
    const log = context.logger.child({ migration: uid });
    log.info({ phase: migration.status?.phase, id, cancelled }, 'migration run started');
    run.done = this.runner
      .drive(run, log)
      .then(
        () => void this.failures.delete(uid),
        async (error: unknown) => {
          const count = (failed?.count ?? 0) + 1;
          const retryInMs = runRetryDelayMs(count);
          const retryAt = Date.now() + retryInMs;
          this.failures.set(uid, { count, retryAt, last: String(error) });
          log.error(
            { err: error, failedRuns: count, retryInMs },
            'migration run failed; the next reconcile resumes it',
          );
          // In status too, for whoever looks at a Migration that does not move (bounded like any condition).
          await this.status
            .runFailed(run.migration, retrying(count, errorText(error), new Date(retryAt)))
            .catch((writeError: unknown) =>
              log.warn({ err: writeError }, 'could not record the failed run in status'),
            );
        },
      )
      .finally(() => this.runs.delete(uid));
    this.runs.set(uid, run);
  }
}

const vmKeyOf = (migration: Migration) => `${migration.metadata.namespace}/${migration.spec.vmName}`;

/** Whether status already says the Migration waits for this slot, on these nodes, for this reason. */
export function waitRecorded(migration: Migration, admission: Extract<Admission, { kind: 'wait' }>): boolean {
  const status = migration.status;
  const waiting = status?.conditions?.find((c) => c.type === MIGRATION_CONDITIONS.Scheduled);
  return (
    status?.phase === 'Pending' &&
    status.sourceNode === admission.source &&
    status.targetNode === admission.target &&
    waiting?.status === 'False' &&
    waiting.reason === admission.reason &&
    waiting.message === admission.message &&
    waiting.observedGeneration === migration.metadata.generation
  );
}

/** An error as one line of a condition's message: its message (gRPC errors: code and details), not its stack. */
function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
