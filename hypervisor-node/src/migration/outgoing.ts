// The source daemon's side of one migration: the engine's SourceMigration, migrating over TCP straight to the
// target QEMU with QEMU's TLS keyed by the migration's one-time token. It stops at the outcome: releasing the
// source or resuming it is the operator's call.
import path from 'node:path';
import type { Logger } from 'pino';
import type { MigrationOutcome, MigrationStage, MigrationState } from '../../../proto/index.js';
import { formatHostPort, parseHostPort, type HostPort } from '../../../cmdline/index.js';
import type { GuestSupervisor } from '../runtime/supervisor.js';
import { resolveMigrationPolicy, type ResolvedMigrationPolicy } from './engine/policy.js';
import type { ProgressSample } from './engine/progress.js';
import { SourceMigration, TooLateToCancelError, type SourceOutcome } from './engine/source.js';
import { EventLog } from './event-log.js';
import { removePskFile, writePskFile } from './engine/psk.js';
import type { NodeMigrationMetrics } from './metrics.js';
import {
  markReleaseStarted,
  migrationsDir,
  removeRecordFile,
  tokenDigest,
  writeRecordFile,
  type MigrationRecordFile,
} from './record-file.js';
import * as grpc from '@grpc/grpc-js';
import { failedPrecondition, invalidArgument, RpcError } from '../rpc/errors.js';
import { retire, type TombstoneStore } from './tombstones.js';
import { decodeToken, retainedImagePath, wallClockUs } from '../../../proto/index.js';
import { mirroredDisks, retainImage, type MirroredDisk } from './engine/local-disks.js';
import { identityOf, removeImageFile, type FileIdentity } from './engine/image-files.js';
import { toWireDecision, toWireOutcome, toWirePhase, toWireProgress } from './wire.js';

/** What an outgoing migration needs from its daemon. */
export interface OutgoingContext {
  supervisor: GuestSupervisor;
  stateRoot: string;
  metrics: NodeMigrationMetrics;
  tombstones: TombstoneStore;
  logger: Logger;
}

/**
 * CancelMigration's answer past the point of no return (the device state crossed, or post-copy runs):
 * FAILED_PRECONDITION, and only then. The operator takes it as "the hand-over finishes the migration".
 */
export function tooLateToCancel(why: string): RpcError {
  return failedPrecondition(`too late to cancel: ${why}`);
}

/** How long ResumeSource waits for the supervisor to conclude that a source QEMU whose QMP closed has exited. */
const QEMU_EXIT_WAIT_MS = 5_000;

export interface OutgoingOptions extends OutgoingContext {
  id: string;
  guest: string;
  policy: ResolvedMigrationPolicy;
  target: HostPort;
  /** The target's NBD server for the guest's local disks (PrepareIncomingResponse.disk_endpoint). */
  diskTarget?: HostPort;
  token: string;
  holdInQuiescing: boolean;
}

interface Hold {
  held: boolean;
  release?: () => void;
  continued?: boolean;
}

export class OutgoingMigration {
  readonly log: EventLog;
  private stage: MigrationStage = 'MIGRATION_STAGE_RUNNING';
  private message = '';
  /** Settles once the outcome is recorded here (and the record file gone, when it left the guest running here). */
  private concluded: Promise<void> = Promise.resolve();
  /** The engine's outcome, once in. */
  private outcome: SourceOutcome | undefined;
  /** The daemon shuts down (close()): the record file stays until the tombstone that replaces it is written. */
  private closing = false;
  private wireOutcome: MigrationOutcome | undefined;

  private constructor(
    private readonly context: OutgoingContext,
    private readonly record: MigrationRecordFile,
    private readonly engine: SourceMigration,
    /**
     * hold_in_quiescing: `release` is set while the migration waits in Quiescing; `continued` when
     * ContinueMigration came in Quiescing before the step reached its hold (it then does not wait).
     */
    private readonly hold: Hold,
  ) {
    this.log = new EventLog(record.id);
    this.subscribe();
  }

  /** Starts QEMU's migration to the target; on a refused start nothing is left behind and it rethrows. */
  static async start(options: OutgoingOptions): Promise<OutgoingMigration> {
    const { guest, supervisor, policy, target, id } = options;
    const spec = supervisor.get(guest)?.spec;
    if (spec === undefined) throw failedPrecondition(`no guest named ${guest}`);
    let localDisks: MirroredDisk[];
    let localImages: FileIdentity[];
    try {
      localDisks = await mirroredDisks(spec);
      // Their identities now: ReleaseSource removes these files, not whatever their names point at by then.
      localImages = await Promise.all(localDisks.map(({ index }) => identityOf(spec.disks[index]!.path)));
    } catch (error) {
      throw failedPrecondition(`the local disks of ${guest} cannot be read: ${(error as Error).message}`);
    }
    if (localDisks.length > 0 && options.diskTarget === undefined) {
      throw failedPrecondition(
        `guest ${guest} has ${localDisks.length} local disk(s): target_disk_endpoint (PrepareIncoming's disk_endpoint) is required`,
      );
    }
    // QEMU's client credentials read the key when they are created (in engine.start), so the file goes right after.
    const tls = await writePskFile(
      path.join(migrationsDir(options.stateRoot), `${id}-out`),
      id,
      decodeToken(options.token)!,
      supervisor.qemuUser,
    );
    const record: MigrationRecordFile = {
      id,
      role: 'source',
      guest,
      dataEndpoint: formatHostPort(target),
      tokenDigest: tokenDigest(options.token),
      ...(localImages.length > 0 ? { localImages } : {}),
    };
    // The quiesce hook runs long after start(); it parks its resolver where continueSwitchover() finds it.
    const hold: Hold = { held: options.holdInQuiescing };
    try {
      const engine = new SourceMigration({
        supervisor,
        guest,
        channel: { transport: 'tcp', host: target.host, port: target.port, tls },
        policy,
        ...(localDisks.length > 0 && options.diskTarget !== undefined
          ? { localDisks: { disks: localDisks, target: options.diskTarget } }
          : {}),
        ...(options.holdInQuiescing
          ? {
              quiesce: () =>
                hold.continued === true
                  ? Promise.resolve()
                  : new Promise<void>((resolve) => (hold.release = resolve)),
            }
          : {}),
      });
      // Before QEMU starts: a daemon that dies from here on leaves a migration its successor must find.
      await writeRecordFile(options.stateRoot, record);
      const outgoing = new OutgoingMigration(options, record, engine, hold);
      await engine.start();
      return outgoing;
    } catch (error) {
      await removeRecordFile(options.stateRoot, id);
      throw failedPrecondition((error as Error).message);
    } finally {
      await removePskFile(tls);
    }
  }

  /**
   * After a daemon restart: takes over the migration the record names. QEMU's migration, if still copying, is
   * cancelled and the guest runs here again; a completed one waits for the hand-over (SourceMigration.adopt).
   */
  static async recover(context: OutgoingContext, record: MigrationRecordFile): Promise<OutgoingMigration> {
    const target = parseHostPort(record.dataEndpoint, 'data endpoint');
    const engine = new SourceMigration({
      supervisor: context.supervisor,
      guest: record.guest,
      // Only for the engine's bookkeeping: an adopted migration never connects again.
      channel: {
        transport: 'tcp',
        ...target,
        tls: { dir: path.join(migrationsDir(context.stateRoot), `${record.id}-out`), identity: record.id },
      },
      policy: resolveMigrationPolicy(),
    });
    const outgoing = new OutgoingMigration(context, record, engine, { held: false });
    await engine.adopt('the source daemon restarted');
    context.logger.info({ migration: record.id, guest: record.guest }, 'outgoing migration recovered');
    return outgoing;
  }

  private subscribe(): void {
    const { engine, log } = this;
    engine.on('phase', (change) =>
      log.append(
        { phase: { from: toWirePhase(change.from), to: toWirePhase(change.to), reason: change.reason } },
        change.atMs,
      ),
    );
    engine.on('progress', (progress) => log.append({ progress: toWireProgress(progress) }, progress.atMs));
    engine.on('decision', (record) => log.append({ decision: toWireDecision(record) }, record.atMs));
    this.concluded = engine.done.then((outcome) => this.conclude(outcome));
  }

  private async conclude(outcome: SourceOutcome): Promise<void> {
    this.hold.release?.();
    this.outcome = outcome;
    this.stage = 'MIGRATION_STAGE_FINISHED';
    this.message = outcome.reason;
    this.wireOutcome = toWireOutcome(outcome);
    this.context.metrics.observeOutgoing(outcome);
    this.context.logger.info(
      {
        migration: this.record.id,
        guest: this.record.guest,
        result: outcome.result,
        reason: outcome.reason,
        durationMs: outcome.durationMs,
        downtimeMs: outcome.downtimeMs,
      },
      'outgoing migration finished',
    );
    // The moment the operator's wait for the outcome can end: the last step of the switchover on this node.
    if (this.wireOutcome.switchover) this.wireOutcome.switchover.outcomeAtUnixUs = wallClockUs();
    this.log.append({ outcome: this.wireOutcome }, Date.now(), true);
    // Not completed and the guest runs here: nothing is left for a successor to hand over or resume. (A stale
    // record would let a later daemon read the guest's next migration in QEMU as this one's.)
    if (leftGuestRunning(outcome) && !this.closing) {
      await removeRecordFile(this.context.stateRoot, this.record.id);
    }
  }

  get guest(): string {
    return this.record.guest;
  }

  /** The latest progress sample while QEMU migrates; undefined once the outcome is in. */
  get liveProgress(): ProgressSample | undefined {
    return this.stage === 'MIGRATION_STAGE_RUNNING' ? this.engine.latest : undefined;
  }

  /** Blocks another migration of the same guest: QEMU migrates, or holds a completed guest for the hand-over. */
  get active(): boolean {
    return (
      this.stage === 'MIGRATION_STAGE_RUNNING' ||
      (this.stage === 'MIGRATION_STAGE_FINISHED' && this.wireOutcome?.result === 'RESULT_COMPLETED')
    );
  }

  sameRequest(target: HostPort, token: string, guest: string): boolean {
    const { record } = this;
    return (
      record.guest === guest &&
      record.tokenDigest === tokenDigest(token) &&
      record.dataEndpoint === formatHostPort(target)
    );
  }

  state(): MigrationState {
    return {
      migrationId: this.record.id,
      role: 'MIGRATION_ROLE_SOURCE',
      guest: this.record.guest,
      stage: this.stage,
      phase: toWirePhase(this.engine.phase),
      message: this.message,
      ...(this.wireOutcome ? { outcome: this.wireOutcome } : {}),
      ...(this.stage === 'MIGRATION_STAGE_RELEASED'
        ? { retainedLocalImages: retainedCopyPaths(this.record) }
        : {}),
    };
  }

  /**
   * Too late (see tooLateToCancel) is FAILED_PRECONDITION; any other failure (QEMU did not answer or did not
   * finish cancelling in time) is UNAVAILABLE, and the caller asks again.
   */
  async cancel(reason: string): Promise<MigrationState> {
    try {
      await this.engine.cancel(reason);
    } catch (error) {
      if (error instanceof TooLateToCancelError) throw tooLateToCancel(error.message);
      throw new RpcError(
        grpc.status.UNAVAILABLE,
        `cancelling migration ${this.record.id} failed: ${(error as Error).message}; retry`,
      );
    }
    return this.state();
  }

  continueSwitchover(): MigrationState {
    if (!this.hold.held || this.engine.phase !== 'Quiescing') {
      throw failedPrecondition(
        `migration ${this.record.id} is not held in Quiescing (phase ${this.engine.phase})`,
      );
    }
    // The step samples the disks before it holds: a continue that arrives first lets it pass its hold.
    this.hold.continued = true;
    this.hold.release?.();
    return this.state();
  }

  /**
   * Hand-over success side: the record moved away from this node, so the paused source QEMU goes. Its local disk
   * images go too only when `removeLocalDisks` (the target runs the guest), except those named in `retain` (disk
   * names), which are moved aside (retainImage); a release after a failure keeps them all at their paths.
   */
  async release(
    recordedOwner: string,
    nodeName: string,
    removeLocalDisks: boolean,
    retain: readonly string[] = [],
  ): Promise<MigrationState> {
    if (this.stage === 'MIGRATION_STAGE_RELEASED') return this.state();
    if (recordedOwner === '' || recordedOwner === nodeName) {
      throw failedPrecondition(
        `the ownership record names ${recordedOwner || 'nobody'}: the source is not released`,
      );
    }
    if (
      this.engine.postCopyStarted &&
      this.stage === 'MIGRATION_STAGE_FINISHED' &&
      this.wireOutcome?.result !== 'RESULT_COMPLETED'
    )
      return this.releaseSplitSource(recordedOwner);
    if (this.record.release === undefined) {
      // Checked before anything is released; then durably first: a daemon killed from here on leaves its successor
      // the release to finish (recoverRelease), with the same files to retain.
      const retained = removeLocalDisks ? [...this.retainedImages(retain)] : [];
      const release = {
        owner: recordedOwner,
        removeLocalDisks,
        ...(retained.length > 0 ? { retain: retained } : {}),
      };
      await markReleaseStarted(this.context.stateRoot, this.record.id, release);
      this.record.release = release;
    }
    try {
      await this.engine.release();
    } catch (error) {
      throw failedPrecondition((error as Error).message);
    }
    await this.finishRelease(recordedOwner, this.record.release.removeLocalDisks);
    return this.state();
  }

  /**
   * A post-copy that did not complete after the record moved to the target (the guest ran there since the post-copy
   * switch): this QEMU holds pages of a guest that is gone. It is stopped (the engine did so at the outcome; again
   * here should that have failed) and removed; the local disk images stay (the target's are newer, but a failure
   * never deletes a disk).
   */
  private async releaseSplitSource(owner: string): Promise<MigrationState> {
    const message = `post-copy did not complete (${this.message})`;
    const status = this.context.supervisor.get(this.record.guest);
    if (status !== undefined && status.phase !== 'Failed' && status.phase !== 'Stopped') {
      await this.context.supervisor.stop(this.record.guest, {
        timeoutMs: 0,
        failure: { reason: 'PostCopyFailed', message },
      });
    }
    if (status !== undefined) await this.context.supervisor.delete(this.record.guest, { timeoutMs: 0 });
    this.stage = 'MIGRATION_STAGE_RELEASED';
    this.message = `${message}: the source QEMU was stopped and removed; ${owner} owns the guest`;
    await this.retire();
    return this.state();
  }

  /** After the source QEMU is gone: removes the local images (when the release says so) and retires RELEASED. */
  private async finishRelease(owner: string, removeLocalDisks: boolean): Promise<void> {
    // The target runs the guest: this node's copies of its local disks are stale now, and a later migration back
    // here must find no file at their paths. After a failure (post-copy lost, a lost node) they may be the only
    // complete copy: kept.
    if (removeLocalDisks) {
      try {
        await releaseLocalImages(this.context, this.record);
      } catch (error) {
        // Nothing is removed before every retained image is aside; the operator asks again.
        throw failedPrecondition((error as Error).message);
      }
    }
    this.stage = 'MIGRATION_STAGE_RELEASED';
    this.message = `released; ${owner} owns the guest`;
    await this.retire();
  }

  /**
   * After a daemon restart, for a record whose ReleaseSource was admitted (its `release` mark): finishes it. A
   * source QEMU still there is released as the call would have; one already gone only leaves the images to remove.
   */
  static async recoverRelease(
    context: OutgoingContext,
    record: MigrationRecordFile,
    nodeName: string,
  ): Promise<OutgoingMigration | undefined> {
    const release = record.release!;
    const status = context.supervisor.get(record.guest);
    if (status !== undefined && status.phase !== 'Failed' && status.phase !== 'Stopped') {
      const outgoing = await OutgoingMigration.recover(context, record);
      await outgoing
        .release(release.owner, nodeName, release.removeLocalDisks)
        .catch((error: Error) =>
          context.logger.warn(
            { migration: record.id, reason: error.message },
            'the release of the source could not be finished; a retried ReleaseSource finishes it',
          ),
        );
      return outgoing;
    }
    // The QEMU was quit: the guest's remains go as the release would have removed them.
    if (status !== undefined) await context.supervisor.delete(record.guest, { timeoutMs: 0 });
    if (release.removeLocalDisks)
      await releaseLocalImages(context, record).catch((error: Error) =>
        context.logger.warn(
          { migration: record.id, reason: error.message },
          'every local image is kept: one to retain could not be moved aside',
        ),
      );
    await retire(context, {
      id: record.id,
      role: 'source',
      state: {
        migrationId: record.id,
        role: 'MIGRATION_ROLE_SOURCE',
        guest: record.guest,
        stage: 'MIGRATION_STAGE_RELEASED',
        phase: 'MIGRATION_PHASE_UNSPECIFIED',
        message: `released; ${release.owner} owns the guest (finished after the daemon restarted)`,
        retainedLocalImages: retainedCopyPaths(record),
      },
      tokenDigest: record.tokenDigest,
      dataEndpoint: record.dataEndpoint,
    });
    context.logger.info({ migration: record.id, guest: record.guest }, 'release finished after a restart');
    return undefined;
  }

  /**
   * The image files of the local disks named in `names` (ReleaseSource's retain_local_disks), checked before the
   * release: each must be a local disk of the guest this migration moved. Without the guest's spec the names cannot
   * be matched to files: every local image of the migration is retained (none is removed by mistake).
   */
  private retainedImages(names: readonly string[]): Set<string> {
    if (names.length === 0) return new Set();
    const spec = this.context.supervisor.get(this.record.guest)?.spec;
    if (spec === undefined) {
      this.context.logger.warn(
        { migration: this.record.id, guest: this.record.guest, retain: names },
        'the guest is gone: every local disk image of the migration is retained',
      );
      return new Set(localImagePaths(this.record));
    }
    const files = new Set<string>();
    for (const name of names) {
      const disk = spec.disks.find((candidate) => candidate.name === name);
      if (disk === undefined || disk.storage !== 'local' || !localImagePaths(this.record).includes(disk.path))
        throw invalidArgument(`retain_local_disks: ${name} is not a local disk this migration copied`);
      files.add(disk.path);
    }
    return files;
  }

  /**
   * Hand-over failure side: the record still names this node, so the guest runs here again; when its QEMU died
   * there is nothing to resume (stage SOURCE_LOST), and the VM's restart policy decides what happens next.
   */
  async resumeSource(recordedOwner: string, nodeName: string): Promise<MigrationState> {
    if (recordedOwner !== nodeName) {
      throw failedPrecondition(
        `the ownership record names ${recordedOwner || 'nobody'}, not ${nodeName}: not resuming`,
      );
    }
    if (this.stage === 'MIGRATION_STAGE_SOURCE_LOST') return this.state();
    if (this.engine.postCopyStarted) return this.loseSplitSource();
    const gone = await this.sourceQemuGone();
    if (gone !== undefined) {
      this.stage = 'MIGRATION_STAGE_SOURCE_LOST';
      this.message = `the source QEMU is gone (${gone}): nothing to resume here`;
      await this.retire();
      return this.state();
    }
    let runState: string;
    try {
      runState = await this.engine.resumeAfterFailure();
    } catch (error) {
      throw failedPrecondition((error as Error).message);
    }
    this.stage = 'MIGRATION_STAGE_SOURCE_RESUMED';
    this.message = `the source runs the guest again (${runState})`;
    await this.retire();
    return this.state();
  }

  /**
   * A post-copy that did not complete split the guest between the nodes: this QEMU cannot run it again. The engine
   * stopped it at the outcome (guest Failed, PostCopyFailed); should that have failed, it is stopped here.
   */
  private async loseSplitSource(): Promise<MigrationState> {
    const message = `post-copy did not complete (${this.message}): the source QEMU cannot run the guest`;
    const status = this.context.supervisor.get(this.record.guest);
    if (status !== undefined && status.phase !== 'Failed' && status.phase !== 'Stopped') {
      await this.context.supervisor.stop(this.record.guest, {
        timeoutMs: 0,
        failure: { reason: 'PostCopyFailed', message },
      });
    }
    this.stage = 'MIGRATION_STAGE_SOURCE_LOST';
    this.message = `${message}; it was stopped and nothing is resumed here`;
    await this.retire();
    return this.state();
  }

  /** The hand-over step is done here: its tombstone replaces the record file. */
  private retire(): Promise<void> {
    return retire(this.context, {
      id: this.record.id,
      role: 'source',
      state: this.state(),
      tokenDigest: this.record.tokenDigest,
      dataEndpoint: this.record.dataEndpoint,
    });
  }

  /**
   * Why the guest's QEMU here is gone, or undefined while it lives: its QMP closed and the supervisor concluded
   * that the process exited (it looks for a few seconds: QMP closes a moment before the process is reaped).
   */
  private async sourceQemuGone(): Promise<string | undefined> {
    if (!this.engine.qmp.closed) return undefined;
    const deadline = Date.now() + QEMU_EXIT_WAIT_MS;
    for (;;) {
      const status = this.context.supervisor.get(this.record.guest);
      if (status === undefined) return 'the guest was deleted';
      if (status.phase === 'Failed' || status.phase === 'Stopped') return status.reason ?? status.phase;
      if (Date.now() >= deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * Daemon shutdown: a migration still copying is cancelled (a source failure), so the guest keeps running here
   * rather than wait paused at the switchover for a daemon that may not come back, and one that ended so leaves its
   * tombstone for the next daemon; post-copy and completed migrations are left to the next daemon, which recovers
   * them.
   */
  async close(): Promise<void> {
    this.closing = true;
    if (this.stage === 'MIGRATION_STAGE_RUNNING' && !this.engine.postCopyStarted) {
      await this.engine.cancel('the source daemon shut down during the migration', 'Source').then(
        () => this.concluded.catch(() => undefined),
        () => undefined,
      );
    }
    // An outcome that left the guest running here, with no hand-over step done yet: the operator asks the next
    // daemon about it, and a tombstone (written before the record file goes) tells it the outcome and that the guest
    // runs here again (ResumeSource done), where the next daemon would not know the migration at all.
    if (
      this.stage === 'MIGRATION_STAGE_FINISHED' &&
      this.outcome !== undefined &&
      leftGuestRunning(this.outcome)
    ) {
      this.stage = 'MIGRATION_STAGE_SOURCE_RESUMED';
      this.message = `the guest runs here again: ${this.outcome.reason}`;
      await this.retire();
    }
    this.log.end();
  }
}

/** The migration did not complete and the guest runs on the source: nothing is left to hand over or resume. */
const leftGuestRunning = (outcome: SourceOutcome): boolean =>
  outcome.result !== 'Completed' && outcome.sourceRunState === 'running';

const localImagePaths = (record: MigrationRecordFile): string[] =>
  (record.localImages ?? []).map((image) => image.path);

/** Where the images the release retains are once it moved them aside (releaseLocalImages). */
const retainedCopyPaths = (record: MigrationRecordFile): string[] =>
  record.release?.removeLocalDisks === true
    ? (record.release.retain ?? []).map((file) => retainedImagePath(file, record.id))
    : [];

/**
 * The release's local images: those its mark retains are moved aside first (retainImage; throws, removing nothing,
 * when one cannot be), then the others are removed, each only while its name still points at the file the
 * migration started with.
 */
async function releaseLocalImages(context: OutgoingContext, record: MigrationRecordFile): Promise<void> {
  const retain = new Set(record.release?.retain ?? []);
  for (const file of retain) await retainImage(file, record.id);
  const left: string[] = [];
  for (const image of record.localImages ?? []) {
    if (retain.has(image.path)) continue;
    if ((await removeImageFile(image)) === 'not-ours') left.push(image.path);
  }
  if (left.length > 0)
    context.logger.warn(
      { migration: record.id, left },
      'not removed: these names no longer point at the images the migration started with',
    );
}
