// Promise-shaped calls to one daemon's Migration API (proto/tern/node/v1alpha1/migration.proto), each unary call
// with a deadline, plus the WatchMigration stream. Shares the node's mTLS channel settings with DaemonGuestClient.
import * as grpc from '@grpc/grpc-js';
import {
  isGrpcError,
  type ClockReading__Output,
  type SteerFramesResponse__Output,
  type Guest__Output,
  type MigrationClient as WireMigrationClient,
  type MigrationEvent__Output,
  type MigrationState__Output,
  type PrepareIncomingResponse__Output,
  type WireMigrationPolicy,
} from '../../../proto/index.js';
import { DaemonApiClient } from './daemon-api-client.js';

/** How long a daemon gives a QEMU to start (its supervisor's start timeout). */
const QEMU_START_TIMEOUT_MS = 30_000;

export interface PrepareIncoming {
  id: string;
  /** The source guest as its daemon reports it (spec and accelerator). */
  source: Guest__Output;
  token: string;
  postCopy: boolean;
  multifdChannels: number;
  /** 'none' or 'zstd': the wire policy's multifdCompression (both QEMUs must use the same). */
  multifdCompression?: string;
  /** The policy's completion timeout per GiB (0/unset: the default): the target's token covers the disk copy. */
  diskCopyTimeoutPerGiBSeconds?: number;
}

export interface StartMigration {
  id: string;
  guest: string;
  targetDataEndpoint: string;
  /** PrepareIncoming's disk_endpoint; '' or unset for a guest without local disks. */
  targetDiskEndpoint?: string;
  token: string;
  policy: WireMigrationPolicy;
  /** The source waits in Quiescing until ContinueMigration (the daemons' tests hold a migration there). */
  holdInQuiescing?: boolean;
}

/**
 * The hand-over calls (resumeTarget, releaseSource, resumeSource) show the ownership record's epoch (the VM's
 * status.epoch when it named recordedOwner; undefined: none, nothing checked); a daemon that was shown a higher one
 * for the guest refuses them (FencedError).
 */
export class MigrationDaemonClient extends DaemonApiClient<WireMigrationClient> {
  /** Starts a QEMU on the target: its deadline adds the daemon's QEMU start timeout to the call timeout. */
  prepareIncoming(request: PrepareIncoming): Promise<PrepareIncomingResponse__Output> {
    return this.unary(
      (done, call) =>
        this.client.prepareIncoming(
          {
            migrationId: request.id,
            spec: request.source.spec!,
            sourceAccelerator: request.source.accelerator,
            channel: {
              postCopy: request.postCopy,
              multifdChannels: request.multifdChannels,
              multifdCompression: request.multifdCompression ?? 'none',
            },
            token: request.token,
            // The source daemon's own account of its local disks' images: the target creates its copies from it.
            localDisks: request.source.localDisks ?? [],
            diskCopyTimeoutPerGibSeconds: request.diskCopyTimeoutPerGiBSeconds ?? 0,
          },
          call.metadata,
          call.options,
          done,
        ),
      QEMU_START_TIMEOUT_MS,
    );
  }

  startMigration(request: StartMigration): Promise<MigrationState__Output> {
    return this.unary((done, call) =>
      this.client.startMigration(
        {
          migrationId: request.id,
          guest: request.guest,
          targetDataEndpoint: request.targetDataEndpoint,
          targetDiskEndpoint: request.targetDiskEndpoint ?? '',
          token: request.token,
          policy: request.policy,
          holdInQuiescing: request.holdInQuiescing ?? false,
        },
        call.metadata,
        call.options,
        done,
      ),
    );
  }

  /** The daemon's wall clock as it handled the call, µs since the epoch (ReadClock). */
  async readClock(): Promise<number> {
    const reading = await this.unary<ClockReading__Output>((done, call) =>
      this.client.readClock({}, call.metadata, call.options, done),
    );
    return reading.unixUs;
  }

  /** The migration's state here, or undefined when this daemon does not know the id. */
  async getMigration(id: string): Promise<MigrationState__Output | undefined> {
    try {
      return await this.unary((done, call) =>
        this.client.getMigration({ migrationId: id }, call.metadata, call.options, done),
      );
    } catch (error) {
      if (isGrpcError(error, grpc.status.NOT_FOUND)) return undefined;
      throw error;
    }
  }

  cancelMigration(id: string, reason: string): Promise<MigrationState__Output> {
    return this.unary((done, call) =>
      this.client.cancelMigration({ migrationId: id, reason }, call.metadata, call.options, done),
    );
  }

  /** What the target could not do to have the guest's frames sent to it (empty: they come there now). */
  async steerFrames(id: string): Promise<string[]> {
    const response = await this.unary<SteerFramesResponse__Output>((done, call) =>
      this.client.steerFrames({ migrationId: id }, call.metadata, call.options, done),
    );
    return response.problems;
  }

  resumeTarget(
    id: string,
    recordedOwner: string,
    epoch: number | undefined,
  ): Promise<MigrationState__Output> {
    return this.unary((done, call) =>
      this.client.resumeTarget(
        { migrationId: id, recordedOwner, epoch: epoch ?? 0 },
        call.metadata,
        call.options,
        done,
      ),
    );
  }

  /**
   * removeLocalDisks: the target runs the guest, so the source's local disk images go too (else they are kept),
   * except the disks named in retainLocalDisks, which the source moves aside (proto retainedImagePath).
   */
  releaseSource(
    id: string,
    recordedOwner: string,
    epoch: number | undefined,
    { removeLocalDisks = false, retainLocalDisks = [] as string[] } = {},
  ): Promise<MigrationState__Output> {
    return this.unary((done, call) =>
      this.client.releaseSource(
        { migrationId: id, recordedOwner, epoch: epoch ?? 0, removeLocalDisks, retainLocalDisks },
        call.metadata,
        call.options,
        done,
      ),
    );
  }

  resumeSource(
    id: string,
    recordedOwner: string,
    epoch: number | undefined,
  ): Promise<MigrationState__Output> {
    return this.unary((done, call) =>
      this.client.resumeSource(
        { migrationId: id, recordedOwner, epoch: epoch ?? 0 },
        call.metadata,
        call.options,
        done,
      ),
    );
  }

  /** Aborting a target that is still starting waits for its QEMU to be gone: the same extra time. */
  /** keepLocalDisks: the ownership record names the target, so the images the migration created there stay. */
  abortIncoming(id: string, { keepLocalDisks = false } = {}): Promise<MigrationState__Output> {
    return this.unary(
      (done, call) =>
        this.client.abortIncoming({ migrationId: id, keepLocalDisks }, call.metadata, call.options, done),
      QEMU_START_TIMEOUT_MS,
    );
  }

  /**
   * Streams the migration's history, then live events, to `onEvent` until the stream ends (after the outcome) or
   * fails; `signal` cancels it. Resolves when the stream ended normally.
   */
  watch(
    id: string,
    progressIntervalMs: number,
    onEvent: (event: MigrationEvent__Output) => void,
    signal: AbortSignal,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      let metadata;
      try {
        metadata = this.callMetadata();
      } catch (error) {
        return reject(error);
      }
      const call = this.client.watchMigration({ migrationId: id, progressIntervalMs }, metadata);
      const cancel = () => call.cancel();
      signal.addEventListener('abort', cancel, { once: true });
      const finish = () => signal.removeEventListener('abort', cancel);
      call.on('data', (event: MigrationEvent__Output) => onEvent(event));
      call.on('error', (error) => {
        finish();
        reject(error);
      });
      call.on('end', () => {
        finish();
        resolve();
      });
    });
  }
}
