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
}

const pskDir = (context: IncomingContext, id: string): string =>
  path.join(migrationsDir(context.stateRoot), `${id}-in`);

export class IncomingMigration {
  readonly log: EventLog;
  private stage: MigrationStage = 'MIGRATION_STAGE_RUNNING';
  private message = 'waiting for the source';

  private constructor(
    private readonly context: IncomingContext,
    readonly id: string,
    readonly guest: string,
    private readonly engine: TargetMigration,
    private readonly tls: PskTls,
  ) {
    this.log = new EventLog(id);
    this.subscribe();
  }

  /** Starts the incoming QEMU listening for the source; on failure nothing is left behind. */
  static async prepare(options: IncomingOptions): Promise<IncomingMigration> {
    const { spec, supervisor, settings, id } = options;
    // Outside the guest's state dir, which the supervisor creates (and refuses to find already there).
    const tls = await writePskFile(pskDir(options, id), id, decodeToken(options.token)!);
    const record = (port: number): MigrationRecordFile => ({
      id,
      role: 'target',
      guest: spec.name,
      dataEndpoint: formatHostPort({ host: options.address, port }),
      tokenDigest: tokenDigest(options.token),
    });
    // Recorded before QEMU starts (port unknown yet), so a daemon dying in between leaves no unknown incoming QEMU.
    await writeRecordFile(options.stateRoot, record(0));
    let engine: TargetMigration;
    try {
      engine = await TargetMigration.prepare({
        supervisor,
        spec: incomingSpec(spec, options.sourceAccelerator),
        channel: { transport: 'tcp', host: options.address, port: 0, tls },
        settings,
      });
      await writeRecordFile(options.stateRoot, record(engine.port));
    } catch (error) {
      await removePskFile(tls);
      await removeRecordFile(options.stateRoot, id);
      throw error;
    }
    const incoming = new IncomingMigration(options, id, spec.name, engine, tls);
    setTimeout(() => void removePskFile(tls), options.tokenTtlMs).unref();
    return incoming;
  }

  /** After a daemon restart: follows the incoming QEMU the record names from where it is. */
  static async recover(context: IncomingContext, record: MigrationRecordFile): Promise<IncomingMigration> {
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
    const incoming = new IncomingMigration(context, record.id, record.guest, engine, tls);
    context.logger.info({ migration: record.id, guest: record.guest }, 'incoming migration recovered');
    return incoming;
  }

  /** host:port the source QEMU connects to. */
  get dataEndpoint(): string {
    return formatHostPort({ host: this.context.address, port: this.engine.port });
  }

  private subscribe(): void {
    const { engine, log, context } = this;
    engine.on('status', (status) =>
      log.append({ target: { state: 'TARGET_STATE_STATUS', qemuStatus: status, message: '' } }),
    );
    engine.loaded.then(
      (loaded) => {
        // Every channel is in by now: the key has nothing left to admit.
        void removePskFile(this.tls);
        if (this.stage !== 'MIGRATION_STAGE_RUNNING') return;
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
        if (this.stage !== 'MIGRATION_STAGE_RUNNING') return;
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
    await this.engine.resume();
    this.stage = 'MIGRATION_STAGE_RESUMED';
    this.message = 'the target runs the guest';
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

  /** Quits the incoming QEMU and removes everything of this migration here. Idempotent; refused once resumed. */
  async abort(): Promise<MigrationState> {
    if (this.stage === 'MIGRATION_STAGE_RESUMED') {
      throw failedPrecondition(`target ${this.guest} runs the guest: it cannot be aborted`);
    }
    if (this.stage === 'MIGRATION_STAGE_ABORTED') return this.state();
    if (this.stage === 'MIGRATION_STAGE_RUNNING') this.context.metrics.observeIncoming('Aborted');
    this.stage = 'MIGRATION_STAGE_ABORTED';
    this.message = 'aborted: nothing of this migration is left here';
    this.log.append(
      { target: { state: 'TARGET_STATE_FAILED', qemuStatus: '', message: 'aborted' } },
      Date.now(),
      true,
    );
    await this.engine.abort();
    await removePskFile(this.tls);
    await removeRecordFile(this.context.stateRoot, this.id);
    return this.state();
  }

  /** Daemon shutdown: the incoming QEMU stays (and keeps listening); the next daemon recovers it. */
  async close(): Promise<void> {
    this.log.end();
  }
}
