// The target daemon's side of one migration: the incoming QEMU (engine TargetMigration, paused, -incoming)
// listening on this node's migration address, a free port, behind QEMU's TLS keyed by the migration's one-time
// token. The guest stays paused once loaded until the operator resumes it (ResumeTarget) or aborts it
// (AbortIncoming).
import path from 'node:path';
import type { Logger } from 'pino';
import type { MigrationStage, MigrationState } from '../../../proto/index.js';
import { formatHostPort } from '../../../cmdline/index.js';
import type { GuestSupervisor } from '../runtime/supervisor.js';
import type { Accelerator, GuestDefinition } from '../model/guest.js';
import type { PskTls } from './engine/channel.js';
import type { QmpMigrationStatus } from '../qemu/qmp-client.js';
import type { ChannelSettings } from './engine/policy.js';
import { incomingSpec, TargetMigration } from './engine/target.js';
import { EventLog } from './event-log.js';
import { removePskFile, writePskFile } from './engine/psk.js';
import {
  migrationsDir,
  removeRecordFile,
  tokenDigest,
  writeRecordFile,
  type MigrationRecordFile,
} from './record-file.js';
import type { NodeMigrationMetrics } from './metrics.js';
import { failedPrecondition } from '../rpc/errors.js';
import { decodeToken } from '../../../proto/index.js';

/** What an incoming migration needs from its daemon. */
export interface IncomingContext {
  /** This node's IP address the incoming QEMU listens on. */
  address: string;
  supervisor: GuestSupervisor;
  stateRoot: string;
  metrics: NodeMigrationMetrics;
  logger: Logger;
}

export interface IncomingOptions extends IncomingContext {
  id: string;
  spec: GuestDefinition;
  sourceAccelerator: Accelerator;
  settings: ChannelSettings;
  token: string;
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
  /** Set once the incoming QEMU (and the key and record files) are being removed; see teardown(). */
  private removal: Promise<void> | undefined;
  private readonly timers: NodeJS.Timeout[] = [];

  private constructor(
    private readonly context: IncomingContext,
    readonly id: string,
    readonly guest: string,
    readonly tokenDigest: string,
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
    const record = (port: number): MigrationRecordFile => ({
      id,
      role: 'target',
      guest: spec.name,
      dataEndpoint: formatHostPort({ host: options.address, port }),
      tokenDigest: tokenDigest(options.token),
      tokenExpiresAtMs,
    });
    const start = async (): Promise<TargetMigration> => {
      // Outside the guest's state dir, which the supervisor creates (and refuses to find already there).
      await writePskFile(tls.dir, id, decodeToken(options.token)!, supervisor.qemuUser);
      try {
        // Recorded before QEMU starts (port unknown yet), so a daemon dying in between leaves no unknown incoming
        // QEMU.
        await writeRecordFile(stateRoot, record(0));
        const engine = await TargetMigration.prepare({
          supervisor,
          spec: incomingSpec(spec, options.sourceAccelerator),
          channel: { transport: 'tcp', host: options.address, port: 0, tls },
          settings,
        });
        try {
          await writeRecordFile(stateRoot, record(engine.port));
        } catch (error) {
          await engine.abort().catch(() => undefined);
          throw error;
        }
        return engine;
      } catch (error) {
        await removePskFile(tls);
        await removeRecordFile(stateRoot, id);
        throw error;
      }
    };
    const incoming = new IncomingMigration(options, id, spec.name, tokenDigest(options.token), tls, start);
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
        settings: { postCopy: false, multifdChannels: 0 },
      },
      port,
    );
    const incoming = new IncomingMigration(context, record.id, record.guest, record.tokenDigest, tls, engine);
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
        this.concludeAborted();
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
      this.concludeAborted();
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
  private async reap(ttlMs: number, marginMs: number): Promise<void> {
    const { engine, context } = this;
    if (this.starting) {
      // The TTL ended before QEMU even listened: look once it does (an abort meanwhile removes it anyway).
      void this.ready.then(
        () => this.reap(ttlMs, marginMs),
        () => undefined,
      );
      return;
    }
    if (engine === undefined || this.removal !== undefined) return;
    if (this.stage === 'MIGRATION_STAGE_RUNNING') {
      const status = await engine.qmp.queryMigrate().then(
        (info) => info.status,
        () => undefined,
      );
      if (this.stage !== 'MIGRATION_STAGE_RUNNING' || this.removal !== undefined) return;
      if (!waitingForSource(status)) {
        // Streaming: it ends loaded or failed; look again later.
        this.timers.push(setTimeout(() => void this.reap(ttlMs, marginMs), marginMs).unref());
        return;
      }
      context.metrics.observeIncoming('Failed');
      this.stage = 'MIGRATION_STAGE_TARGET_FAILED';
      this.message = `no source connected within the token's TTL (${Math.round(ttlMs / 1000)} s) and nobody aborted the migration: the daemon removed the incoming QEMU`;
      context.logger.warn(
        { migration: this.id, guest: this.guest, reason: this.message },
        'unused incoming migration reaped',
      );
      this.log.append(
        { target: { state: 'TARGET_STATE_FAILED', qemuStatus: status ?? '', message: this.message } },
        Date.now(),
        true,
      );
      await this.teardown().catch((error: Error) =>
        context.logger.warn(
          { migration: this.id, reason: error.message },
          'reaping the incoming QEMU failed',
        ),
      );
    } else if (this.stage === 'MIGRATION_STAGE_TARGET_FAILED') {
      this.message = `${this.message}; nobody aborted the migration within the token's TTL and a margin, so the daemon removed the incoming QEMU`;
      context.logger.warn({ migration: this.id, guest: this.guest }, 'failed incoming migration reaped');
      await this.teardown().catch((error: Error) =>
        context.logger.warn(
          { migration: this.id, reason: error.message },
          'reaping the incoming QEMU failed',
        ),
      );
    }
  }

  /** Quits the incoming QEMU and removes its key and record files; once, however many callers ask. */
  private teardown(): Promise<void> {
    this.clearTimers();
    this.removal ??= (async () => {
      await this.engine?.abort();
      await removePskFile(this.tls);
      await removeRecordFile(this.context.stateRoot, this.id);
    })();
    return this.removal;
  }

  private clearTimers(): void {
    for (const timer of this.timers.splice(0)) clearTimeout(timer);
  }

  private concludeAborted(): void {
    this.context.metrics.observeIncoming('Aborted');
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
   * incoming QEMU listening, loading or loaded (ResumeTarget or AbortIncoming pending), or one whose incoming
   * migration failed and whose QEMU is still there (AbortIncoming pending, or the daemon's own clean-up).
   */
  get pending(): boolean {
    if (this.starting) return true;
    if (this.stage === 'MIGRATION_STAGE_RUNNING' || this.stage === 'MIGRATION_STAGE_LOADED') return true;
    return this.stage === 'MIGRATION_STAGE_TARGET_FAILED' && this.removal === undefined;
  }

  /** True once aborted (AbortIncoming, also while QEMU was still starting). */
  get aborted(): boolean {
    return this.stage === 'MIGRATION_STAGE_ABORTED' || this.abortRequested;
  }

  /** host:port the source QEMU connects to ('' while QEMU starts). */
  get dataEndpoint(): string {
    if (this.engine === undefined) return '';
    return formatHostPort({ host: this.context.address, port: this.engine.port });
  }

  private subscribe(engine: TargetMigration): void {
    const { log, context } = this;
    engine.on('status', (status) =>
      log.append({ target: { state: 'TARGET_STATE_STATUS', qemuStatus: status, message: '' } }),
    );
    engine.loaded.then(
      (loaded) => {
        // Every channel is in by now: the key has nothing left to admit.
        void removePskFile(this.tls);
        if (this.stage !== 'MIGRATION_STAGE_RUNNING' || this.abortRequested) return;
        context.metrics.observeIncoming('Loaded');
        this.stage = 'MIGRATION_STAGE_LOADED';
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
        if (this.stage !== 'MIGRATION_STAGE_RUNNING' || this.abortRequested) return;
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

  state(): MigrationState {
    this.noticeLostQemu();
    return {
      migrationId: this.id,
      role: 'MIGRATION_ROLE_TARGET',
      guest: this.guest,
      stage: this.stage,
      phase: 'MIGRATION_PHASE_UNSPECIFIED',
      message: this.message,
    };
  }

  /** Hand-over success side: the record names this node, so the loaded guest runs here. */
  async resume(recordedOwner: string, nodeName: string): Promise<MigrationState> {
    if (this.stage === 'MIGRATION_STAGE_RESUMED') return this.state();
    if (recordedOwner !== nodeName) {
      throw failedPrecondition(
        `the ownership record names ${recordedOwner || 'nobody'}, not ${nodeName}: not resuming`,
      );
    }
    this.noticeLostQemu();
    if (this.stage !== 'MIGRATION_STAGE_LOADED') {
      throw failedPrecondition(`target ${this.guest} is not loaded (${this.message})`);
    }
    await this.engine!.resume();
    this.stage = 'MIGRATION_STAGE_RESUMED';
    this.message = 'the target runs the guest';
    this.clearTimers();
    await removeRecordFile(this.context.stateRoot, this.id);
    return this.state();
  }

  /**
   * A loaded guest whose QEMU has since died (the supervisor concluded its exit) can never be resumed: the stage
   * becomes TARGET_FAILED, which tells the operator that this node does not hold the guest.
   */
  private noticeLostQemu(): void {
    if (this.stage !== 'MIGRATION_STAGE_LOADED') return;
    const status = this.context.supervisor.get(this.guest);
    if (status !== undefined && status.phase !== 'Failed' && status.phase !== 'Stopped') return;
    this.stage = 'MIGRATION_STAGE_TARGET_FAILED';
    this.message = `the loaded target QEMU is gone (${status?.reason ?? 'the guest was deleted'})`;
    this.context.logger.info({ migration: this.id, reason: this.message }, 'incoming migration failed');
  }

  /**
   * Quits the incoming QEMU and removes everything of this migration here. Idempotent; refused once resumed.
   * While QEMU still starts, marks the migration aborted and waits until the start has removed it again, so that
   * the answer (stage ABORTED) still means that nothing of it is left here.
   */
  async abort(): Promise<MigrationState> {
    if (this.stage === 'MIGRATION_STAGE_RESUMED') {
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
    if (this.stage === 'MIGRATION_STAGE_ABORTED') {
      // An abort that is still removing QEMU (or the start's own clean-up): answer once it is gone.
      await this.removal?.catch(() => undefined);
      return this.state();
    }
    if (this.stage === 'MIGRATION_STAGE_RUNNING') this.context.metrics.observeIncoming('Aborted');
    this.stage = 'MIGRATION_STAGE_ABORTED';
    this.message = 'aborted: nothing of this migration is left here';
    this.log.append(
      { target: { state: 'TARGET_STATE_FAILED', qemuStatus: '', message: 'aborted' } },
      Date.now(),
      true,
    );
    await this.teardown();
    return this.state();
  }

  /** Daemon shutdown: the incoming QEMU stays (and keeps listening); the next daemon recovers it. */
  async close(): Promise<void> {
    this.clearTimers();
    this.log.end();
  }
}
