// The target daemon's side of one migration: the incoming QEMU (engine TargetMigration, paused, -incoming)
// listening on this node's migration address, a free port, behind QEMU's TLS keyed by the migration's one-time
// token. The guest stays paused once loaded until the operator resumes it (ResumeTarget) or aborts it
// (AbortIncoming). A guest loaded for post-copy is resumed while its remaining pages still stream in: the migration
// is followed (and its record file kept) until QEMU completed it, and should it not complete, the guest's QEMU here
// is stopped (Failed, PostCopyFailed) rather than left blocked on pages that never come (endPostCopy).
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { MigrationStage, MigrationState, TargetSwitchover } from '../../../proto/index.js';
import { formatHostPort } from '../../../cmdline/index.js';
import type { GuestSupervisor } from '../runtime/supervisor.js';
import type { Accelerator, GuestDefinition } from '../model/guest.js';
import type { PskTls } from './engine/channel.js';
import type { QmpMigrationStatus } from '../qemu/qmp-client.js';
import type { ChannelSettings } from './engine/policy.js';
import { incomingSpec, TargetMigration } from './engine/target.js';
import { createTargetImage, planTargetImages, removeCreatedImages } from './engine/local-disks.js';
import type { LocalDiskImage } from '../qemu/local-image.js';
import type { CreatedImage } from './engine/image-files.js';
import { EventLog } from './event-log.js';
import { removePskFile, writePskFile } from './engine/psk.js';
import {
  markPostCopyStarted,
  markResumeStarted,
  migrationsDir,
  removeRecordFile,
  tokenDigest,
  writeRecordFile,
  type MigrationRecordFile,
} from './record-file.js';
import type { NodeMigrationMetrics } from './metrics.js';
import { retire, type TombstoneStore } from './tombstones.js';
import { failedPrecondition } from '../rpc/errors.js';
import { decodeToken } from '../../../proto/index.js';

/** What an incoming migration needs from its daemon. */
export interface IncomingContext {
  /** This node's IP address the incoming QEMU listens on. */
  address: string;
  supervisor: GuestSupervisor;
  stateRoot: string;
  metrics: NodeMigrationMetrics;
  tombstones: TombstoneStore;
  logger: Logger;
}

export interface IncomingOptions extends IncomingContext {
  id: string;
  spec: GuestDefinition;
  sourceAccelerator: Accelerator;
  settings: ChannelSettings;
  token: string;
  /** The source's image of each `storage: local` disk (PrepareIncomingRequest.local_disks). */
  localDisks: LocalDiskImage[];
  /** After this long the key file goes, and with it any chance of a (late) source connecting. */
  tokenTtlMs: number;
  /** How long after the token's TTL an incoming QEMU no source connected to is removed (default REAP_MARGIN_MS). */
  reapMarginMs?: number;
}

/** PrepareIncoming's token_ttl_seconds when unset. */
export const DEFAULT_TOKEN_TTL_MS = 300_000;
/**
 * The grace after the token's TTL before an incoming QEMU that no source reached is removed: a source that
 * authenticated just before the key went has long started streaming by then.
 */
export const REAP_MARGIN_MS = 15_000;

/** How soon a refused `migrate-recover` is sent again while post-copy stays paused. */
const RELISTEN_RETRY_MS = 250;

/**
 * What a restarted daemon answers for a target record whose guest's QEMU it cannot follow any more (`why`: dead,
 * gone, or not adoptable), or undefined when the record holds no resume mark (the guest provably never ran here).
 * With the mark ResumeTarget may have run the guest here, and the guest may have written to its disks: the answer is
 * RESUMED, so that the operator releases the source and never runs its stale memory again; the VM's restartPolicy
 * starts the guest again where the ownership record names, this node.
 */
export function resumedTargetLost(
  record: MigrationRecordFile,
  why: string,
): Pick<MigrationState, 'stage' | 'message' | 'guestLost'> | undefined {
  if (record.role !== 'target' || record.resumeStartedAtMs === undefined) return undefined;
  return {
    stage: 'MIGRATION_STAGE_RESUMED',
    message: `the target's QEMU died after it was told to resume the guest (${why}); the guest starts again by its restartPolicy`,
    guestLost: true,
  };
}

/** Thrown to a PrepareIncoming (and every retry that joined it) whose migration was aborted while QEMU started. */
export class IncomingAbortedError extends Error {}

/**
 * True when an incoming QEMU in this migration state (query-migrate) has not been reached by a source: it
 * listens (`setup`, or `none` before migrate-incoming), and nothing streams into it.
 */
export function waitingForSource(status: QmpMigrationStatus | undefined): boolean {
  return status === undefined || status === 'none' || status === 'setup';
}

const pskDir = (context: IncomingContext, id: string): string =>
  path.join(migrationsDir(context.stateRoot), `${id}-in`);

export class IncomingMigration {
  readonly log: EventLog;
  /** Settles once the incoming QEMU listens (dataEndpoint known), or with the reason it does not. */
  readonly ready: Promise<void>;
  private stage: MigrationStage = 'MIGRATION_STAGE_RUNNING';
  private message: string;
  private engine: TargetMigration | undefined;
  /** True while QEMU starts (PrepareIncoming has not answered yet). */
  private starting: boolean;
  /** AbortIncoming arrived while QEMU started: the start tears it down again once it finished. */
  private abortRequested = false;
  /** Set once the incoming QEMU (and the key file) are being removed; see teardown(). */
  private removal: Promise<void> | undefined;
  /** Set while ResumeTarget runs the loaded guest (stage RESUMING): an abort meanwhile waits for it. */
  private resuming: Promise<MigrationState> | undefined;
  /** Set once AbortIncoming began removing a started QEMU: resume is refused; ABORTED once it is gone. */
  private aborting = false;
  /** Set once the record file holds the resume mark (`cont` was or may have been sent; see resumedTargetLost). */
  private resumeMarked = false;
  /** RESUMED because the QEMU died after the resume mark: the guest may have run here and is gone (guest_lost). */
  private guestLost = false;
  /**
   * The migration's key, in memory only, to listen again for a post-copy stream that broke (the key file is gone
   * once the guest is loaded); undefined for a migration recovered after a daemon restart, which cannot.
   */
  private key: Buffer | undefined;
  /** True while the incoming QEMU listens again for a broken post-copy stream. */
  private relistening = false;
  /** listenForRecovery is asking QEMU to listen again (one at a time). */
  private relistenUnderWay = false;
  /** A post-copy resumed here ended: completed, or stopped (endPostCopy). */
  private postCopyEnded = false;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Local disk images created here for this migration; removed with the incoming QEMU unless it resumed. */
  private createdImages: CreatedImage[] = [];
  /**
   * The incoming migration switched to post-copy: the source cannot run the guest any more, and the images created
   * here are one of its complete disks: kept whatever becomes of this migration (see record-file postCopyStartedAtMs).
   */
  private postCopy = false;
  /** A recovered migration's disk endpoint, from its record. */
  private recoveredDiskEndpoint = '';
  /** When ResumeTarget arrived (µs since the epoch; for the switchover timeline). */
  private resumeRequestedAtUs: number | undefined;

  private constructor(
    private readonly context: IncomingContext,
    readonly id: string,
    readonly guest: string,
    readonly tokenDigest: string,
    /** host:port the incoming QEMU listens on, as recorded (for the tombstone). */
    private readonly recordedEndpoint: () => string,
    private readonly tls: PskTls,
    start: (() => Promise<TargetMigration>) | TargetMigration,
  ) {
    this.log = new EventLog(id);
    if (start instanceof TargetMigration) {
      this.starting = false;
      this.message = 'waiting for the source';
      this.attach(start);
      this.ready = Promise.resolve();
    } else {
      this.starting = true;
      this.message = 'starting the incoming QEMU';
      this.ready = this.start(start);
      // Callers that stopped waiting (a client past its deadline) must not crash the daemon.
      this.ready.catch(() => undefined);
    }
  }

  /**
   * Starts the incoming QEMU listening for the source and returns at once, before it listens: the migration is
   * known (GetMigration, AbortIncoming, a retried PrepareIncoming) from the first moment. `ready` settles when
   * it listens; on failure nothing is left behind. An abort() meanwhile makes the start tear QEMU down again and
   * `ready` reject with IncomingAbortedError.
   */
  static begin(options: IncomingOptions): IncomingMigration {
    const { spec, supervisor, settings, id, stateRoot } = options;
    const tls: PskTls = { dir: pskDir(options, id), identity: id };
    const tokenExpiresAtMs = Date.now() + options.tokenTtlMs;
    const created: CreatedImage[] = [];
    const record = (port: number, diskPort = 0): MigrationRecordFile => ({
      id,
      role: 'target',
      guest: spec.name,
      dataEndpoint: formatHostPort({ host: options.address, port }),
      tokenDigest: tokenDigest(options.token),
      tokenExpiresAtMs,
      ...(created.length > 0 ? { createdImages: [...created] } : {}),
      ...(diskPort > 0 ? { diskEndpoint: formatHostPort({ host: options.address, port: diskPort }) } : {}),
    });
    const start = async (): Promise<TargetMigration> => {
      // Outside the guest's state dir, which the supervisor creates (and refuses to find already there).
      await writePskFile(tls.dir, id, decodeToken(options.token)!, supervisor.qemuUser);
      try {
        // Recorded before QEMU starts (port unknown yet), so a daemon dying in between leaves no unknown incoming
        // QEMU.
        await writeRecordFile(stateRoot, record(0));
        for (const target of planTargetImages(spec, options.localDisks)) {
          await createTargetImage(
            target,
            supervisor.writableRoots(spec.namespace),
            supervisor.qemuUser,
            id,
            async (image) => {
              // The intent first (before the file exists), then its identity (before it is filled).
              const at = created.findIndex((entry) => entry.path === image.path);
              if (at >= 0) created[at] = image;
              else created.push(image);
              incoming.createdImages = [...created];
              await writeRecordFile(stateRoot, record(0));
            },
          );
        }
        const engine = await TargetMigration.prepare({
          supervisor,
          spec: incomingSpec(spec, options.sourceAccelerator),
          channel: { transport: 'tcp', host: options.address, port: 0, tls },
          settings,
        });
        try {
          await writeRecordFile(stateRoot, record(engine.port, engine.diskPort));
        } catch (error) {
          await engine.abort().catch(() => undefined);
          throw error;
        }
        return engine;
      } catch (error) {
        await removePskFile(tls);
        // The incoming QEMU is gone (prepare removes it on failure): its images go with it.
        await incoming.removeImages(created);
        incoming.createdImages = [];
        await removeRecordFile(stateRoot, id);
        throw error;
      }
    };
    const incoming: IncomingMigration = new IncomingMigration(
      options,
      id,
      spec.name,
      tokenDigest(options.token),
      (): string => incoming.dataEndpoint,
      tls,
      start,
    );
    incoming.key = decodeToken(options.token)!;
    incoming.scheduleExpiry(tokenExpiresAtMs, options.reapMarginMs ?? REAP_MARGIN_MS, options.tokenTtlMs);
    return incoming;
  }

  /** After a daemon restart: follows the incoming QEMU the record names from where it is. */
  static async recover(
    context: IncomingContext & { reapMarginMs?: number },
    record: MigrationRecordFile,
  ): Promise<IncomingMigration> {
    const status = context.supervisor.get(record.guest);
    if (status === undefined) throw new Error(`guest ${record.guest} of migration ${record.id} is gone`);
    const tls = { dir: pskDir(context, record.id), identity: record.id };
    const port = Number(/:(\d+)$/.exec(record.dataEndpoint)?.[1]);
    const engine = await TargetMigration.adopt(
      {
        supervisor: context.supervisor,
        spec: status.spec,
        channel: { transport: 'tcp', host: context.address, port, tls },
        settings: { postCopy: false, multifdChannels: 0, multifdCompression: 'none' },
      },
      port,
    );
    const incoming = new IncomingMigration(
      context,
      record.id,
      record.guest,
      record.tokenDigest,
      () => record.dataEndpoint,
      tls,
      engine,
    );
    incoming.createdImages = record.createdImages ?? [];
    incoming.postCopy = record.postCopyStartedAtMs !== undefined;
    incoming.recoveredDiskEndpoint = record.diskEndpoint ?? '';
    if (engine.isResumed) {
      // Resumed before the daemon went away (which did not get to remove the record file): the guest runs here.
      incoming.stage = 'MIGRATION_STAGE_RESUMED';
      incoming.message = 'the target runs the guest (resumed before the daemon restarted)';
      incoming.resumeMarked = true;
      if (incoming.postCopyRunning) {
        // Its post-copy still streams: followed to its end like one resumed by this daemon (without the key, a broken
        // stream cannot be listened for again; the source then fails it and the operator ends it here).
        incoming.message = 'the target runs the guest in post-copy (resumed before the daemon restarted)';
        incoming.followResumedPostCopy(engine);
        context.logger.info(
          { migration: record.id, guest: record.guest },
          'incoming migration recovered in post-copy, the guest running here',
        );
        return incoming;
      }
      await incoming.retire();
      context.logger.info(
        { migration: record.id, guest: record.guest },
        'resumed incoming migration recovered',
      );
      return incoming;
    }
    // Marked but not running: `cont` did not reach QEMU, or failed; the guest stays loaded (a retried ResumeTarget).
    incoming.resumeMarked = record.resumeStartedAtMs !== undefined;
    // A record of an older daemon has no expiry: the token's default TTL counts from now.
    const expiresAtMs = record.tokenExpiresAtMs ?? Date.now() + DEFAULT_TOKEN_TTL_MS;
    incoming.scheduleExpiry(expiresAtMs, context.reapMarginMs ?? REAP_MARGIN_MS);
    context.logger.info({ migration: record.id, guest: record.guest }, 'incoming migration recovered');
    return incoming;
  }

  private async start(start: () => Promise<TargetMigration>): Promise<void> {
    let engine: TargetMigration;
    try {
      engine = await start();
    } catch (error) {
      this.starting = false;
      if (this.abortRequested) {
        this.concludeAborted(true);
        await this.retire();
        throw new IncomingAbortedError(
          `migration ${this.id} was aborted while its incoming QEMU started (which failed: ${(error as Error).message}); nothing of it is left here`,
        );
      }
      this.stage = 'MIGRATION_STAGE_TARGET_FAILED';
      this.message = (error as Error).message;
      this.clearTimers();
      this.log.end();
      throw error;
    }
    this.starting = false;
    this.attach(engine);
    if (this.abortRequested) {
      await this.teardown();
      this.concludeAborted(true);
      await this.retire();
      throw new IncomingAbortedError(
        `migration ${this.id} was aborted while its incoming QEMU started; that QEMU was removed again`,
      );
    }
  }

  private attach(engine: TargetMigration): void {
    this.engine = engine;
    this.subscribe(engine);
  }

  /**
   * The token's end: its key file goes at `expiresAtMs`; `marginMs` later an incoming QEMU that no source
   * reached (or whose incoming migration failed and nobody aborted) is removed by the daemon itself.
   */
  private scheduleExpiry(expiresAtMs: number, marginMs: number, ttlMs?: number): void {
    const ttl = ttlMs ?? Math.max(0, expiresAtMs - Date.now());
    this.timers.push(
      setTimeout(() => void removePskFile(this.tls), Math.max(0, expiresAtMs - Date.now())).unref(),
      setTimeout(
        () => void this.reap(ttl, marginMs),
        Math.max(0, expiresAtMs + marginMs - Date.now()),
      ).unref(),
    );
  }

  /** See scheduleExpiry. A loaded target is never removed here: it may hold the guest's only complete copy. */
  private async reap(ttlMs: number, marginMs: number, unanswered = 0): Promise<void> {
    const { engine, context } = this;
    if (this.starting) {
      // The TTL ended before QEMU even listened: look once it does (an abort meanwhile removes it anyway).
      void this.ready.then(
        () => this.reap(ttlMs, marginMs),
        () => undefined,
      );
      return;
    }
    if (engine === undefined || this.removal !== undefined || this.aborting || this.resuming) return;
    // A loaded target whose QEMU died meanwhile (killed, or stopped by the node's self-fencing) without a resume
    // mark holds no write of the guest: it turns TARGET_FAILED here and is removed below, images and all. A loaded
    // one still running is looked at again: it waits for the hand-over, but it may still die.
    this.noticeLostQemu();
    if (this.stage === 'MIGRATION_STAGE_LOADED') {
      this.timers.push(setTimeout(() => void this.reap(ttlMs, marginMs), marginMs).unref());
      return;
    }
    if (this.stage === 'MIGRATION_STAGE_RUNNING') {
      const query = await engine.qmp.queryMigrate().then(
        (info) => ({ status: info.status }),
        (error: Error) => ({ error: error.message }),
      );
      // The incoming migration moved on meanwhile (loaded, failed): decide again from where it is now.
      if (this.stage !== 'MIGRATION_STAGE_RUNNING') return this.reap(ttlMs, marginMs);
      if (this.removal !== undefined || this.aborting) return;
      const decision = reapDecision(query, unanswered);
      if (decision === 'look-again') {
        // Streaming (it ends loaded or failed), or QEMU did not answer this time: look again later.
        const next = 'error' in query ? unanswered + 1 : 0;
        this.timers.push(setTimeout(() => void this.reap(ttlMs, marginMs, next), marginMs).unref());
        return;
      }
      context.metrics.observeIncoming('Failed');
      this.stage = 'MIGRATION_STAGE_TARGET_FAILED';
      this.message =
        'error' in query
          ? `its incoming QEMU stopped answering (query-migrate: ${query.error}, ${unanswered + 1} times) before any source completed the migration, and nobody aborted it: the daemon removed it`
          : `no source connected within the token's TTL (${Math.round(ttlMs / 1000)} s) and nobody aborted the migration: the daemon removed the incoming QEMU`;
      context.logger.warn(
        { migration: this.id, guest: this.guest, reason: this.message },
        'unused incoming migration reaped',
      );
      this.log.append(
        {
          target: {
            state: 'TARGET_STATE_FAILED',
            qemuStatus: 'status' in query ? (query.status ?? '') : '',
            message: this.message,
          },
        },
        Date.now(),
        true,
      );
      await this.removeReaped();
    } else if (this.stage === 'MIGRATION_STAGE_TARGET_FAILED') {
      this.message = `${this.message}; nobody aborted the migration within the token's TTL and a margin, so the daemon removed the incoming QEMU`;
      context.logger.warn({ migration: this.id, guest: this.guest }, 'failed incoming migration reaped');
      await this.removeReaped();
    }
  }

  private async removeReaped(): Promise<void> {
    try {
      await this.teardown();
    } catch (error) {
      this.context.logger.warn(
        { migration: this.id, reason: (error as Error).message },
        'reaping the incoming QEMU failed',
      );
      return;
    }
    await this.retire();
  }

  /**
   * Quits the incoming QEMU and removes its key file; once, however many callers ask (again after a failure). The
   * record file goes with retire(), after the tombstone is written.
   */
  private teardown(): Promise<void> {
    this.clearTimers();
    this.key = undefined;
    this.removal ??= (async () => {
      try {
        await this.engine?.abort();
        await removePskFile(this.tls);
        // Only once the incoming QEMU is gone, and only the files this migration created here.
        await this.removeImages(this.createdImages);
        this.createdImages = [];
      } catch (error) {
        this.removal = undefined;
        throw error;
      }
    })();
    return this.removal;
  }

  /** Removes local disk images this migration created (by identity); a name that is no longer its file is left. */
  private async removeImages(images: readonly CreatedImage[]): Promise<void> {
    if (this.postCopy && images.length > 0) {
      this.context.logger.warn(
        { migration: this.id, kept: images.map((image) => image.path) },
        "kept: the migration reached post-copy, so these images are one of the guest's complete disks",
      );
      return;
    }
    const left = await removeCreatedImages(images);
    if (left.length > 0)
      this.context.logger.warn(
        { migration: this.id, left },
        'not removed: these names no longer point at the image files this migration created',
      );
  }

  /** The step is done (resumed, aborted, or failed and removed): its tombstone replaces the record file. */
  private retire(): Promise<void> {
    return retire(this.context, {
      id: this.id,
      role: 'target',
      state: this.state(),
      tokenDigest: this.tokenDigest,
      dataEndpoint: this.recordedEndpoint(),
    });
  }

  private clearTimers(): void {
    for (const timer of this.timers.splice(0)) clearTimeout(timer);
  }

  /** Nothing of the migration is left here (any QEMU removed): stage ABORTED. */
  private concludeAborted(count: boolean): void {
    if (this.stage === 'MIGRATION_STAGE_ABORTED') return;
    if (count) this.context.metrics.observeIncoming('Aborted');
    this.stage = 'MIGRATION_STAGE_ABORTED';
    this.message = 'aborted: nothing of this migration is left here';
    this.clearTimers();
    this.log.append(
      { target: { state: 'TARGET_STATE_FAILED', qemuStatus: '', message: 'aborted' } },
      Date.now(),
      true,
    );
  }

  /**
   * True while this migration still holds something here that only its own calls release: QEMU starting, an
   * incoming QEMU listening, loading, loaded or resuming (ResumeTarget or AbortIncoming pending), or one whose
   * incoming migration failed and whose QEMU is still there (AbortIncoming pending, or the daemon's own clean-up).
   */
  get pending(): boolean {
    if (this.starting || this.aborting || this.resuming) return this.stage !== 'MIGRATION_STAGE_ABORTED';
    if (this.postCopyRunning) return true;
    if (this.stage === 'MIGRATION_STAGE_RUNNING' || this.stage === 'MIGRATION_STAGE_LOADED') return true;
    return this.stage === 'MIGRATION_STAGE_TARGET_FAILED' && this.removal === undefined;
  }

  /**
   * A failed incoming migration whose QEMU is gone (the stale-guest sweep or an admin deleted the guest, or it died):
   * removes what is left and retires the record now, so that it neither blocks a new migration of the guest nor,
   * reaped later, removes that migration's QEMU (the guest's name is the same). A QEMU still running waits for
   * AbortIncoming or the reaper.
   */
  async removeIfQemuGone(): Promise<void> {
    // A loaded target whose QEMU died since is TARGET_FAILED (or RESUMED, guest lost, with the resume mark) first.
    this.noticeLostQemu();
    if (this.stage !== 'MIGRATION_STAGE_TARGET_FAILED' || this.removal !== undefined) return;
    const status = this.context.supervisor.get(this.guest);
    if (status !== undefined && status.phase !== 'Failed' && status.phase !== 'Stopped') return;
    this.message = `${this.message}; its QEMU was gone when another migration of the guest was prepared`;
    await this.teardown();
    await this.retire();
  }

  /** True once aborted (AbortIncoming, also while QEMU was still starting or is being removed). */
  get aborted(): boolean {
    return this.stage === 'MIGRATION_STAGE_ABORTED' || this.abortRequested || this.aborting;
  }

  /** host:port of the NBD server for the local disks ('' without local disks, or while QEMU starts). */
  get diskEndpoint(): string {
    if (this.engine === undefined || this.engine.diskPort === 0) return this.recoveredDiskEndpoint;
    return formatHostPort({ host: this.context.address, port: this.engine.diskPort });
  }

  /** host:port the source QEMU connects to ('' while QEMU starts). */
  get dataEndpoint(): string {
    if (this.engine === undefined) return '';
    return formatHostPort({ host: this.context.address, port: this.engine.port });
  }

  private subscribe(engine: TargetMigration): void {
    const { log, context } = this;
    engine.on('status', (status) => {
      log.append({ target: { state: 'TARGET_STATE_STATUS', qemuStatus: status, message: '' } });
      if (status === 'postcopy-active') this.notePostCopy();
      if (status === 'postcopy-paused') void this.listenForRecovery(engine);
      else if (status === 'postcopy-active' && this.relistening) {
        this.relistening = false;
        void removePskFile(this.tls);
        context.logger.info({ migration: this.id }, 'post-copy stream resumed');
      }
    });
    engine.loaded.then(
      (loaded) => {
        // Every channel is in by now: the key has nothing left to admit.
        void removePskFile(this.tls);
        if (this.stage !== 'MIGRATION_STAGE_RUNNING' || this.abortRequested || this.aborting) return;
        context.metrics.observeIncoming('Loaded');
        this.stage = 'MIGRATION_STAGE_LOADED';
        if (loaded.postCopy) this.notePostCopy();
        this.message = loaded.postCopy
          ? 'loaded for post-copy; paused until ResumeTarget'
          : 'loaded and paused until ResumeTarget';
        log.append(
          {
            target: {
              state: 'TARGET_STATE_LOADED',
              qemuStatus: engine.migrationStatus,
              message: this.message,
            },
          },
          loaded.atMs,
          true,
        );
      },
      (error: Error) => {
        void removePskFile(this.tls);
        if (this.stage !== 'MIGRATION_STAGE_RUNNING' || this.abortRequested || this.aborting) return;
        context.metrics.observeIncoming('Failed');
        this.stage = 'MIGRATION_STAGE_TARGET_FAILED';
        this.message = error.message;
        context.logger.info({ migration: this.id, reason: error.message }, 'incoming migration failed');
        log.append(
          {
            target: {
              state: 'TARGET_STATE_FAILED',
              qemuStatus: engine.migrationStatus,
              message: error.message,
            },
          },
          Date.now(),
          true,
        );
      },
    );
  }

  /** The incoming migration is in post-copy: its images are kept from now on, also by a successor daemon. */
  private notePostCopy(): void {
    if (this.postCopy) return;
    this.postCopy = true;
    markPostCopyStarted(this.context.stateRoot, this.id).catch((error: Error) =>
      this.context.logger.warn(
        { migration: this.id, reason: error.message },
        'the post-copy mark could not be written to the record file',
      ),
    );
  }

  /**
   * The post-copy stream broke: the incoming QEMU listens again on its port, with the key file back, so that the
   * source can resume the stream (the source gives up after its policy's stall timeout, and the operator aborts this
   * side). Again after each failed attempt (QEMU pauses once more).
   */
  private async listenForRecovery(engine: TargetMigration): Promise<void> {
    const mayListen = (): boolean => this.key !== undefined && !this.aborting && this.removal === undefined;
    if (!mayListen() || this.relistenUnderWay) return;
    this.relistenUnderWay = true;
    try {
      await writePskFile(this.tls.dir, this.id, this.key!, this.context.supervisor.qemuUser);
      // QEMU may still hold the port while it closes the broken stream's listener ("Address already in use"): tried
      // again while post-copy stays paused here, until the source gives up and this side is aborted.
      const stillPaused = (): boolean =>
        engine.migrationStatus === 'postcopy-paused' && !engine.qmp.closed && mayListen();
      for (;;) {
        try {
          await engine.listenForRecovery();
          break;
        } catch (error) {
          if (!stillPaused()) throw error;
          await sleep(RELISTEN_RETRY_MS);
          if (!stillPaused()) throw error;
        }
      }
      this.relistening = true;
      this.context.logger.info(
        { migration: this.id, endpoint: this.dataEndpoint },
        'post-copy paused: listening again for the source',
      );
    } catch (error) {
      this.context.logger.warn(
        { migration: this.id, reason: (error as Error).message },
        'post-copy paused: could not listen again for the source',
      );
    } finally {
      this.relistenUnderWay = false;
    }
  }

  state(): MigrationState {
    this.noticeLostQemu();
    return {
      migrationId: this.id,
      role: 'MIGRATION_ROLE_TARGET',
      guest: this.guest,
      stage: this.stage,
      phase: 'MIGRATION_PHASE_UNSPECIFIED',
      message: this.message,
      guestLost: this.guestLost,
      ...(this.engine?.switchover.loadedAtUs !== undefined ? { switchover: this.switchover() } : {}),
    };
  }

  /**
   * SteerFrames: the source paused the guest for the switchover; the network sends its frames here from now on
   * (TargetMigration.steerFrames). Returns what did not work, also logged.
   */
  async steerFrames(): Promise<string[]> {
    const problems =
      this.engine === undefined ? ['the incoming QEMU is not started yet'] : await this.engine.steerFrames();
    if (problems.length > 0)
      this.context.logger.warn(
        { migration: this.id, problems },
        "the guest's frames could not all be steered to this node",
      );
    return problems;
  }

  /** The switchover's steps seen here (engine TargetSwitchoverSteps), for the operator's timeline. */
  private switchover(): TargetSwitchover {
    const steps = this.engine!.switchover;
    const frame = steps.firstFrame;
    return {
      loadedAtUnixUs: steps.loadedAtUs ?? 0,
      resumeRequestedAtUnixUs: this.resumeRequestedAtUs ?? 0,
      resumedAtUnixUs: steps.resumedAtUs ?? 0,
      firstFrameAtUnixUs: frame !== undefined && 'atUs' in frame ? frame.atUs : 0,
      firstFrameResolutionUs: frame !== undefined && 'atUs' in frame ? frame.resolutionUs : 0,
      firstFrameNote: frame !== undefined && 'note' in frame ? frame.note : '',
      firstFramePending: this.engine!.firstFrame !== undefined && frame === undefined,
      framesBeforeResume: steps.framesBeforeResume ?? 0,
      framesSteeredAtUnixUs: steps.framesSteeredAtUs ?? 0,
    };
  }

  /**
   * Hand-over success side: the record names this node, so the loaded guest runs here. The stage is RESUMING
   * until QEMU runs it: a second ResumeTarget meanwhile joins this one, an AbortIncoming waits for it.
   */
  async resume(
    recordedOwner: string,
    nodeName: string,
    requestedAtUs?: number,
    /** Settles once the caller's ownership epoch is on disk; `cont` waits for it (FencingStore.raiseEpoch). */
    epochDurable: Promise<void> = Promise.resolve(),
  ): Promise<MigrationState> {
    if (this.stage === 'MIGRATION_STAGE_RESUMED') return this.state();
    this.resumeRequestedAtUs ??= requestedAtUs;
    if (recordedOwner !== nodeName) {
      throw failedPrecondition(
        `the ownership record names ${recordedOwner || 'nobody'}, not ${nodeName}: not resuming`,
      );
    }
    if (this.resuming !== undefined) return this.resuming;
    if (this.aborting || this.abortRequested) {
      throw failedPrecondition(`target ${this.guest} is being aborted: not resuming`);
    }
    this.noticeLostQemu();
    // A marked resume whose QEMU died since (noticeLostQemu): the guest may have run, which RESUMED tells.
    if ((this.stage as MigrationStage) === 'MIGRATION_STAGE_RESUMED') return this.state();
    if (this.stage !== 'MIGRATION_STAGE_LOADED') {
      throw failedPrecondition(`target ${this.guest} is not loaded (${this.message})`);
    }
    const loadedMessage = this.message;
    this.stage = 'MIGRATION_STAGE_RESUMING';
    this.message = 'resuming the loaded guest';
    const resuming = this.runResume(loadedMessage, epochDurable);
    this.resuming = resuming;
    try {
      return await resuming;
    } finally {
      this.resuming = undefined;
    }
  }

  private async runResume(loadedMessage: string, epochDurable: Promise<void>): Promise<MigrationState> {
    const engine = this.engine!;
    // Durably before `cont`: a daemon that finds this QEMU dead after a crash must know the guest may have run. The
    // caller's epoch goes to disk at the same time (two files, two flushes that overlap instead of following each
    // other); `cont` waits for both.
    const [mark, epoch] = await Promise.allSettled([
      markResumeStarted(this.context.stateRoot, this.id),
      epochDurable,
    ]);
    // A mark on disk counts even when the epoch failed: the file says so after a restart, and so must this record.
    if (mark.status === 'fulfilled') this.resumeMarked = true;
    const failed =
      mark.status === 'rejected'
        ? `the resume mark could not be written to the record file (${reasonOf(mark)})`
        : epoch.status === 'rejected'
          ? `the ownership epoch could not be written (${reasonOf(epoch)})`
          : undefined;
    if (failed !== undefined) {
      this.stage = 'MIGRATION_STAGE_LOADED';
      this.message = loadedMessage;
      throw new Error(`not resuming: ${failed}`);
    }
    try {
      await engine.resume();
    } catch (error) {
      if (!engine.isResumed) {
        // QEMU does not run the guest: it stays loaded (noticeLostQemu tells when its QEMU is gone).
        this.stage = 'MIGRATION_STAGE_LOADED';
        this.message = loadedMessage;
        throw error;
      }
      // `cont` ran; only the network announcement failed. The guest runs here all the same.
      this.context.logger.warn(
        { migration: this.id, reason: (error as Error).message },
        'the resumed guest could not be announced on the network',
      );
    }
    this.stage = 'MIGRATION_STAGE_RESUMED';
    this.message = 'the target runs the guest';
    this.clearTimers();
    if (this.postCopyRunning) {
      this.message =
        'the target runs the guest; post-copy: the remaining pages are streaming from the source';
      this.followResumedPostCopy(engine);
      return this.state();
    }
    await this.retire();
    return this.state();
  }

  /**
   * The guest runs here while the post-copy's pages still stream in (resumed on the post-copy switch): true until
   * QEMU completed the incoming migration, or the migration ended otherwise (endPostCopy, the QEMU died).
   */
  get postCopyRunning(): boolean {
    if (this.stage !== 'MIGRATION_STAGE_RESUMED' || this.guestLost || this.postCopyEnded) return false;
    const status = this.engine?.migrationStatus;
    return status !== undefined && status.startsWith('postcopy');
  }

  /**
   * A guest resumed in post-copy: the record file stays until QEMU completed the incoming migration (then the
   * tombstone RESUMED replaces it). A QEMU that dies meanwhile lost the guest (guest_lost: the VM's restartPolicy
   * starts it again on this node, which the ownership record names); an incoming migration that fails leaves the
   * guest without its missing pages, so its QEMU is stopped (endPostCopy).
   */
  private followResumedPostCopy(engine: TargetMigration): void {
    engine.completed.then(
      () => {
        if (this.postCopyEnded || this.guestLost) return;
        this.postCopyEnded = true;
        this.message = 'the target runs the guest (post-copy completed)';
        this.log.append(
          { target: { state: 'TARGET_STATE_STATUS', qemuStatus: 'completed', message: this.message } },
          Date.now(),
          true,
        );
        this.retire().catch((error: Error) =>
          this.context.logger.warn({ migration: this.id, reason: error.message }, 'tombstone not written'),
        );
      },
      (error: Error) => {
        if (this.postCopyEnded || this.guestLost) return;
        void this.endPostCopy(`the incoming post-copy failed: ${error.message}`).catch((stopError: Error) =>
          this.context.logger.warn(
            { migration: this.id, reason: stopError.message },
            'the post-copy guest could not be stopped',
          ),
        );
      },
    );
  }

  /**
   * The post-copy of a guest that runs here cannot complete (the source ended it, or the incoming stream failed):
   * pages the guest has not touched yet are on no node any more, so it must not run on. Its QEMU is stopped (guest
   * Failed, PostCopyFailed; a QEMU already gone is left so) and the stage stays RESUMED with guest_lost: the guest
   * starts again from scratch here, where the ownership record names, by its restartPolicy. The images this
   * migration created stay: they are the guest's disks.
   */
  private async endPostCopy(why: string): Promise<MigrationState> {
    this.postCopyEnded = true;
    this.guestLost = true;
    this.key = undefined;
    this.message = `post-copy did not complete (${why}): the guest's QEMU here is stopped; the guest starts again by its restartPolicy`;
    this.context.logger.warn({ migration: this.id, reason: this.message }, 'post-copy guest stopped');
    void removePskFile(this.tls);
    const status = this.context.supervisor.get(this.guest);
    if (status !== undefined && status.phase !== 'Failed' && status.phase !== 'Stopped') {
      await this.context.supervisor.stop(this.guest, {
        timeoutMs: 0,
        failure: { reason: 'PostCopyFailed', message: this.message },
      });
    }
    this.log.append(
      {
        target: {
          state: 'TARGET_STATE_FAILED',
          qemuStatus: this.engine?.migrationStatus ?? '',
          message: this.message,
        },
      },
      Date.now(),
      true,
    );
    await this.retire();
    return this.state();
  }

  /**
   * A loaded guest whose QEMU has since died (the supervisor concluded its exit) can never be resumed: the stage
   * becomes TARGET_FAILED, which tells the operator that this node does not hold the guest. Unless a resume was
   * marked: then `cont` may have reached QEMU before it died, the guest may have run here, and the stage is
   * RESUMED (see resumedTargetLost).
   */
  private noticeLostQemu(): void {
    if (this.stage !== 'MIGRATION_STAGE_LOADED' || this.aborting) return;
    const status = this.context.supervisor.get(this.guest);
    if (status !== undefined && status.phase !== 'Failed' && status.phase !== 'Stopped') return;
    const why = `the loaded target QEMU is gone (${status?.reason ?? 'the guest was deleted'})`;
    if (this.resumeMarked) {
      this.stage = 'MIGRATION_STAGE_RESUMED';
      this.guestLost = true;
      this.message = `the target's QEMU died after it was told to resume the guest (${why}); the guest starts again by its restartPolicy`;
      this.clearTimers();
      this.retire().catch(() => undefined);
      this.context.logger.warn({ migration: this.id, reason: this.message }, 'resumed target QEMU lost');
      return;
    }
    this.stage = 'MIGRATION_STAGE_TARGET_FAILED';
    this.message = why;
    this.context.logger.info({ migration: this.id, reason: this.message }, 'incoming migration failed');
  }

  /**
   * Quits the incoming QEMU and removes everything of this migration here. Idempotent; refused once resumed (a
   * resume under way is waited for). The stage turns ABORTED only once QEMU is gone, so that the answer means
   * that nothing of it is left here; while QEMU still starts, the migration is marked aborted and the answer
   * waits until the start has removed it again.
   */
  async abort(keepLocalDisks = false): Promise<MigrationState> {
    if (this.resuming !== undefined) await this.resuming.catch(() => undefined);
    this.noticeLostQemu();
    if (this.stage === 'MIGRATION_STAGE_RESUMED') {
      // Its QEMU died after it was told to resume: nothing of the migration is left (the guest is the VM's now).
      if (this.guestLost) return this.state();
      // Resumed in post-copy, whose pages stop coming: the caller has the source's word that it ended.
      if (this.postCopyRunning)
        return this.endPostCopy('aborted: the source ended the post-copy before its last page');
      throw failedPrecondition(`target ${this.guest} runs the guest: it cannot be aborted`);
    }
    if (this.starting) {
      if (!this.abortRequested) {
        this.abortRequested = true;
        this.context.logger.info(
          { migration: this.id, guest: this.guest },
          'incoming migration aborted while QEMU starts',
        );
      }
      await this.ready.catch(() => undefined);
      return this.state();
    }
    if (this.stage === 'MIGRATION_STAGE_ABORTED') return this.state();
    const count = this.stage === 'MIGRATION_STAGE_RUNNING';
    // The record names this node: the images this migration created are the guest's disks now.
    if (keepLocalDisks) this.createdImages = [];
    if (!this.aborting) {
      this.aborting = true;
      this.message = 'aborting: removing the incoming QEMU';
    }
    await this.teardown();
    // Another abort that waited for the same teardown may have concluded already (concludeAborted is idempotent).
    this.concludeAborted(count);
    await this.retire();
    return this.state();
  }

  /** Daemon shutdown: the incoming QEMU stays (and keeps listening); the next daemon recovers it. */
  async close(): Promise<void> {
    this.clearTimers();
    this.log.end();
  }
}

/** query-migrate calls in a row that an incoming QEMU may leave unanswered before the reaper removes it. */
export const MAX_UNANSWERED_REAP_QUERIES = 3;

/**
 * What the reaper does with an incoming migration still RUNNING after its token's TTL and a margin, from its QEMU's
 * query-migrate (`unanswered`: how many of them failed in a row before this one). Streaming: look again (it ends
 * loaded or failed). Still waiting for a source: remove it. No answer: look again, and after
 * MAX_UNANSWERED_REAP_QUERIES failed queries remove it too: a QEMU that no longer answers must not keep the
 * migration (and the guest's name on this node) for ever, and a target that is not loaded holds no complete copy.
 */
export function reapDecision(
  query: { status: QmpMigrationStatus | undefined } | { error: string },
  unanswered: number,
): 'look-again' | 'reap-unused' | 'reap-unresponsive' {
  if ('error' in query) {
    return unanswered + 1 >= MAX_UNANSWERED_REAP_QUERIES ? 'reap-unresponsive' : 'look-again';
  }
  return waitingForSource(query.status) ? 'reap-unused' : 'look-again';
}

/** A failed step's error message. */
const reasonOf = (settled: PromiseRejectedResult): string =>
  settled.reason instanceof Error ? settled.reason.message : String(settled.reason);
