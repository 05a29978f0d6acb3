// The target daemon's side of one migration: the incoming QEMU (engine TargetMigration, paused, -incoming), the
// tunnel's target endpoint that connects admitted data links to it in channel order, and the token grant. The
// guest stays paused once loaded until the operator resumes it (ResumeTarget) or aborts it (AbortIncoming).
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { MigrationStage, MigrationState } from '../../../proto/index.js';
import { guestPaths } from '../guests/state-dir.js';
import type { GuestSupervisor } from '../guests/supervisor.js';
import type { Accelerator, GuestSpec } from '../guests/types.js';
import type { ChannelSettings } from './engine/policy.js';
import { incomingSpec, TargetMigration } from './engine/target.js';
import { EventLog } from './event-log.js';
import { failedPrecondition } from './rpc.js';
import { openTargetEndpoint, type TargetEndpoint } from './tunnel/target-endpoint.js';
import type { MigrationTokenRegistry } from './tunnel/token.js';

export interface IncomingOptions {
  id: string;
  spec: GuestSpec;
  sourceAccelerator: Accelerator;
  settings: ChannelSettings;
  token: string;
  tokenTtlMs: number;
  supervisor: GuestSupervisor;
  stateRoot: string;
  tokens: MigrationTokenRegistry;
  logger: Logger;
}

export class IncomingMigration {
  readonly log: EventLog;
  private stage: MigrationStage = 'MIGRATION_STAGE_RUNNING';
  private message = 'waiting for the source';

  private constructor(
    readonly options: IncomingOptions,
    private readonly engine: TargetMigration,
    private readonly endpoint: TargetEndpoint,
  ) {
    this.log = new EventLog(options.id);
  }

  /** Starts the incoming QEMU, opens the endpoint and grants the token; on failure nothing is left behind. */
  static async prepare(options: IncomingOptions): Promise<IncomingMigration> {
    const { spec, supervisor, settings, tokens, id } = options;
    const socketPath = path.join(guestPaths(options.stateRoot, spec.name).dir, 'mig-i.sock');
    const engine = await TargetMigration.prepare({
      supervisor,
      spec: incomingSpec(spec, options.sourceAccelerator),
      uri: `unix:${socketPath}`,
      settings,
    });
    const channels = 1 + settings.multifdChannels;
    const endpoint = openTargetEndpoint({ qemuSocketPath: socketPath, channels });
    const incoming = new IncomingMigration(options, engine, endpoint);
    incoming.subscribe();
    tokens.grant(id, options.token, channels, Date.now() + options.tokenTtlMs);
    return incoming;
  }

  private subscribe(): void {
    const { engine, log, options } = this;
    engine.on('status', (status) =>
      log.append({ target: { state: 'TARGET_STATE_STATUS', qemuStatus: status, message: '' } }),
    );
    engine.loaded.then(
      (loaded) => {
        // Every channel is in by now: the token has nothing left to admit.
        options.tokens.revoke(options.id);
        if (this.stage !== 'MIGRATION_STAGE_RUNNING') return;
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
        options.tokens.revoke(options.id);
        void this.endpoint.close(error);
        if (this.stage !== 'MIGRATION_STAGE_RUNNING') return;
        this.stage = 'MIGRATION_STAGE_TARGET_FAILED';
        this.message = error.message;
        options.logger.info({ migration: options.id, reason: error.message }, 'incoming migration failed');
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

  get guest(): string {
    return this.options.spec.name;
  }

  get accepting(): boolean {
    return this.stage === 'MIGRATION_STAGE_RUNNING';
  }

  /** An admitted data link for channel `channelIndex`: connected to the incoming QEMU in channel order. */
  accept(link: Duplex, channelIndex: number): void {
    this.endpoint
      .accept(link, channelIndex)
      .catch((error: Error) =>
        this.options.logger.warn(
          { migration: this.options.id, channelIndex, reason: error.message },
          'data link dropped',
        ),
      );
  }

  state(): MigrationState {
    return {
      migrationId: this.options.id,
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
    if (this.stage !== 'MIGRATION_STAGE_LOADED') {
      throw failedPrecondition(`target ${this.guest} is not loaded (${this.message})`);
    }
    await this.engine.resume();
    this.stage = 'MIGRATION_STAGE_RESUMED';
    this.message = 'the target runs the guest';
    return this.state();
  }

  /** Quits the incoming QEMU and removes everything of this migration here. Idempotent; refused once resumed. */
  async abort(): Promise<MigrationState> {
    if (this.stage === 'MIGRATION_STAGE_RESUMED') {
      throw failedPrecondition(`target ${this.guest} runs the guest: it cannot be aborted`);
    }
    if (this.stage === 'MIGRATION_STAGE_ABORTED') return this.state();
    this.stage = 'MIGRATION_STAGE_ABORTED';
    this.message = 'aborted: nothing of this migration is left here';
    this.options.tokens.revoke(this.options.id);
    this.log.append(
      { target: { state: 'TARGET_STATE_FAILED', qemuStatus: '', message: 'aborted' } },
      Date.now(),
      true,
    );
    await this.endpoint.close(new Error('incoming migration aborted'));
    await this.engine.abort();
    return this.state();
  }

  /** Daemon shutdown: stops admitting links; the incoming QEMU stays for the next daemon to clean up. */
  close(): void {
    this.options.tokens.revoke(this.options.id);
    this.log.end();
  }
}
