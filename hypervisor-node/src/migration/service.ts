// The Migration gRPC service (proto/tern/node/v1alpha1/migration.proto) over the engine. A daemon
// plays the source of some migrations and the target of others; each is kept by its id so that a retried call
// with the same id finds it again. The service never resumes a target or releases a source by itself.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type {
  MigrationEvent,
  MigrationHandlers,
  MigrationStage,
  MigrationState,
} from '../../../proto/index.js';
import { DNS1123_LABEL } from '../../../crds/index.js';
import { formatHostPort, parseHostPort } from '../../../cmdline/index.js';
import { GuestExistsError, GuestStartError, type GuestSupervisor } from '../runtime/supervisor.js';
import type { Accelerator } from '../model/guest.js';
import { GuestSpecError } from '../qemu/validate.js';
import { OperatorCalls, type ErrorStatuses } from '../rpc/calls.js';
import type { FencingStore } from '../rpc/fencing.js';
import { failedPrecondition, invalidArgument, RpcError } from '../rpc/errors.js';
import { fromWireSpec } from '../rpc/guest-wire.js';
import type { RpcMetrics } from '../rpc/metrics.js';
import {
  MigrationPolicyError,
  resolveMigrationPolicy,
  validateChannelSettings,
  type ChannelSettings,
  type MultifdCompression,
} from './engine/policy.js';
import {
  DEFAULT_TOKEN_TTL_MS,
  IncomingAbortedError,
  IncomingMigration,
  resumedTargetLost,
} from './incoming.js';
import { NodeMigrationMetrics } from './metrics.js';
import { readRecordFiles, removeRecordFile, tokenDigest, type MigrationRecordFile } from './record-file.js';
import { OutgoingMigration, tooLateToCancel } from './outgoing.js';
import { retire, TombstoneStore, type Tombstone } from './tombstones.js';
import { decodeToken, wallClockUs } from '../../../proto/index.js';
import { policyOverridesFromWire } from './wire.js';
import { fromWireLocalDisks } from '../rpc/guest-wire.js';
import {
  diskCopyAllowanceMs,
  planTargetImages,
  removeCreatedImages,
  TargetImageError,
  TargetImageExistsError,
} from './engine/local-disks.js';

export interface MigrationServiceOptions {
  supervisor: GuestSupervisor;
  stateRoot: string;
  nodeName: string;
  accelerator: Accelerator;
  operatorIdentities: readonly string[];
  /** The node's fencing token and ownership epochs (the hand-over calls check the epoch they carry). */
  fencing: FencingStore;
  /** This node's IP address incoming QEMUs listen on. */
  migrationAddress: string;
  /** The daemon's registry: the service adds tern_node_migration_* to it. */
  registry: Registry;
  rpcMetrics: RpcMetrics;
  logger: Logger;
}

export interface MigrationService {
  handlers: MigrationHandlers;
  /** Daemon start: takes over the migrations a previous daemon left (their record files), before serving. */
  recover(): Promise<void>;
  /** Daemon shutdown: ends every watch stream; see OutgoingMigration.close and IncomingMigration.close. */
  close(): Promise<void>;
}

const MIGRATION_ID = DNS1123_LABEL;
const DEFAULT_PROGRESS_INTERVAL_MS = 1000;
const MIN_PROGRESS_INTERVAL_MS = 100;
/**
 * Migrations remembered (for retries and GetMigration). Past it the oldest finished ones are forgotten; one that
 * still matters (see `matters` in createMigrationService) never is, and a new one is refused instead.
 */
export const MAX_MIGRATION_RECORDS = 200;

/** The side of one migration this daemon plays. */
type MigrationSide = OutgoingMigration | IncomingMigration;

const ERROR_STATUSES: ErrorStatuses = [
  [GuestSpecError, grpc.status.INVALID_ARGUMENT],
  [MigrationPolicyError, grpc.status.INVALID_ARGUMENT],
  [GuestStartError, grpc.status.ABORTED],
  // Two PrepareIncoming calls of other ids for one guest at once: the supervisor lets one win.
  [GuestExistsError, grpc.status.ALREADY_EXISTS],
  [IncomingAbortedError, grpc.status.ABORTED],
  [TargetImageExistsError, grpc.status.ALREADY_EXISTS],
  [TargetImageError, grpc.status.FAILED_PRECONDITION],
];

/** A PrepareIncoming's channel settings, checked: a bad combination is refused before any QEMU starts. */
function channelSettingsFromWire(
  channel: { postCopy: boolean; multifdChannels: number; multifdCompression: string } | null | undefined,
): ChannelSettings {
  try {
    return validateChannelSettings({
      postCopy: channel?.postCopy ?? false,
      multifdChannels: channel?.multifdChannels ?? 0,
      multifdCompression: (channel?.multifdCompression || 'none') as MultifdCompression,
    });
  } catch (error) {
    throw invalidArgument(`channel: ${(error as Error).message}`);
  }
}

function checkId(id: string): string {
  if (!MIGRATION_ID.test(id))
    throw invalidArgument(`migration_id ${JSON.stringify(id)} must be a DNS-1123 label`);
  return id;
}

function checkToken(token: string): string {
  if (decodeToken(token) === undefined) throw invalidArgument('token must be 32 random bytes in base64url');
  return token;
}

/**
 * Which remembered migrations (oldest first, as `records` lists them) to forget so that one more fits under
 * `max`: only those that no longer matter, oldest first. Undefined when too many of them still matter.
 */
export function planEviction(
  records: readonly { id: string; matters: boolean }[],
  max: number,
): string[] | undefined {
  const excess = records.length + 1 - max;
  if (excess <= 0) return [];
  const finished = records.filter((record) => !record.matters).map((record) => record.id);
  return finished.length < excess ? undefined : finished.slice(0, excess);
}

export function createMigrationService(options: MigrationServiceOptions): MigrationService {
  const { supervisor, logger, nodeName } = options;
  const calls = new OperatorCalls({
    service: 'migration',
    operatorIdentities: options.operatorIdentities,
    errorStatuses: ERROR_STATUSES,
    fencing: options.fencing,
    metrics: options.rpcMetrics,
    logger,
  });
  const records = new Map<string, MigrationSide>();
  /** The hand-over steps done here, durable (tombstones.ts): what a migration no longer in `records` ended as. */
  const tombstones = new TombstoneStore(options.stateRoot);
  const streams = new Set<grpc.ServerWritableStream<unknown, MigrationEvent>>();
  const metrics = new NodeMigrationMetrics(options.registry, () =>
    [...records.values()].flatMap((record) =>
      record instanceof OutgoingMigration ? [{ guest: record.guest, latest: record.liveProgress }] : [],
    ),
  );

  /** Outgoing migrations whose StartMigration is under way (not yet in `records`), by id. */
  const starting = new Map<string, { guest: string; done: Promise<unknown> }>();

  /**
   * Whether forgetting this migration could lose something: a target QEMU starting, listening, loaded or failed
   * but not cleaned up (IncomingMigration.pending); a source that migrates or holds a completed guest for the
   * hand-over (OutgoingMigration.active), or whose failed migration left the guest paused for ResumeSource.
   */
  function matters(record: MigrationSide): boolean {
    if (record instanceof IncomingMigration) return record.pending;
    if (record.active) return true;
    return (
      record.state().stage === 'MIGRATION_STAGE_FINISHED' && supervisor.get(record.guest)?.phase === 'Paused'
    );
  }

  /**
   * Makes room for one more migration by forgetting the oldest finished ones; RESOURCE_EXHAUSTED (nothing
   * forgotten) when every remembered migration still matters. Synchronous: the caller registers its migration
   * right after, before any other call can take the room.
   */
  function makeRoom(id: string): void {
    const listed = [...records].map(([recordId, record]) => ({ id: recordId, matters: matters(record) }));
    // Starts under way count as migrations that matter.
    for (const [startingId] of starting) listed.push({ id: startingId, matters: true });
    const evict = planEviction(listed, MAX_MIGRATION_RECORDS);
    if (evict === undefined) {
      throw new RpcError(
        grpc.status.RESOURCE_EXHAUSTED,
        `${nodeName} tracks ${listed.length} migrations that are all in progress or awaiting their hand-over ` +
          `(at most ${MAX_MIGRATION_RECORDS}): refusing ${id} until one of them finishes`,
      );
    }
    for (const oldId of evict) records.delete(oldId);
  }

  function find(id: string): MigrationSide {
    const record = records.get(checkId(id));
    if (!record)
      throw new RpcError(grpc.status.NOT_FOUND, `no migration ${JSON.stringify(id)} on ${nodeName}`);
    return record;
  }

  function outgoing(id: string): OutgoingMigration {
    const record = find(id);
    if (!(record instanceof OutgoingMigration))
      throw failedPrecondition(`${nodeName} is the target of ${id}, not its source`);
    return record;
  }

  function incoming(id: string): IncomingMigration {
    const record = find(id);
    if (!(record instanceof IncomingMigration))
      throw failedPrecondition(`${nodeName} is the source of ${id}, not its target`);
    return record;
  }

  /**
   * The tombstone of a migration no longer in `records` (a hand-over step done, then a daemon restart or an
   * eviction), on the side `role`; undefined when there is none or the migration is still remembered.
   */
  function tombstoneOf(id: string, role: Tombstone['role']): Tombstone | undefined {
    if (records.has(checkId(id))) return undefined;
    const tombstone = tombstones.get(id);
    if (tombstone === undefined) return undefined;
    if (tombstone.role !== role) {
      throw failedPrecondition(
        `${nodeName} was the ${tombstone.role} of ${id}, not its ${role} (it ended ${tombstone.state.stage})`,
      );
    }
    return tombstone;
  }

  /** A hand-over call repeated on a tombstone: the same answer when its step is one of `done`, else refused. */
  function repeated(tombstone: Tombstone, done: readonly MigrationStage[], call: string): MigrationState {
    if (tombstone.state.stage !== undefined && done.includes(tombstone.state.stage)) return tombstone.state;
    throw failedPrecondition(
      `${call}: migration ${tombstone.id} ended ${tombstone.state.stage} on ${nodeName} (${tombstone.state.message})`,
    );
  }

  /** What a StartMigration still under way (not yet in `records`) reports. */
  function startingState(id: string, guest: string): MigrationState {
    return {
      migrationId: id,
      role: 'MIGRATION_ROLE_SOURCE',
      guest,
      stage: 'MIGRATION_STAGE_STARTING',
      phase: 'MIGRATION_PHASE_UNSPECIFIED',
      message: `StartMigration is under way on ${nodeName}`,
    };
  }

  const handlers: MigrationHandlers = {
    PrepareIncoming: calls.unary('PrepareIncoming', async (request) => {
      const id = checkId(request.migrationId);
      const token = checkToken(request.token);
      if (!request.spec) throw invalidArgument('spec is required');
      const spec = fromWireSpec(request.spec);
      const existing = records.get(id);
      if (existing !== undefined) {
        if (existing instanceof IncomingMigration && existing.guest === spec.name) {
          if (existing.tokenDigest !== tokenDigest(token)) {
            throw new RpcError(
              grpc.status.ALREADY_EXISTS,
              `migration ${id} exists on ${nodeName} with another token`,
            );
          }
          // A retry (the client's deadline passed while QEMU started): the first call's answer, not a second QEMU.
          await existing.ready;
          if (existing.aborted) {
            throw new RpcError(grpc.status.ABORTED, `migration ${id} was aborted on ${nodeName}`);
          }
          return {
            dataEndpoint: existing.dataEndpoint,
            diskEndpoint: existing.diskEndpoint,
            state: existing.state(),
          };
        }
        throw new RpcError(
          grpc.status.ALREADY_EXISTS,
          `migration ${id} exists on ${nodeName} for another guest or role`,
        );
      }
      const ended = tombstones.get(id);
      if (ended !== undefined) {
        // A late retry of a migration whose step is done here: never a second QEMU.
        if (ended.state.stage === 'MIGRATION_STAGE_ABORTED' && ended.tokenDigest === tokenDigest(token)) {
          throw new RpcError(grpc.status.ABORTED, `migration ${id} was aborted on ${nodeName}`);
        }
        throw new RpcError(
          grpc.status.ALREADY_EXISTS,
          `migration ${id} already ended on ${nodeName} (${ended.state.stage})`,
        );
      }
      const sourceAccelerator: Accelerator | undefined =
        request.sourceAccelerator === 'ACCELERATOR_KVM'
          ? 'kvm'
          : request.sourceAccelerator === 'ACCELERATOR_TCG'
            ? 'tcg'
            : undefined;
      if (sourceAccelerator === undefined) throw invalidArgument('source_accelerator is required');
      const settings = channelSettingsFromWire(request.channel);
      if (sourceAccelerator !== options.accelerator) {
        throw failedPrecondition(
          `the source runs ${sourceAccelerator}, this node ${options.accelerator}: a guest never migrates between them`,
        );
      }
      for (const other of [...records.values()]) {
        if (other instanceof IncomingMigration && other.guest === spec.name) await other.removeIfQemuGone();
      }
      for (const [otherId, other] of records) {
        if (other instanceof IncomingMigration && other.guest === spec.name && other.pending) {
          throw new RpcError(
            grpc.status.ALREADY_EXISTS,
            `guest ${JSON.stringify(spec.name)} is the target of migration ${otherId} on ${nodeName}`,
          );
        }
      }
      if (supervisor.get(spec.name)) {
        throw new RpcError(
          grpc.status.ALREADY_EXISTS,
          `guest ${JSON.stringify(spec.name)} already exists on ${nodeName}`,
        );
      }
      const localDisks = fromWireLocalDisks(request.localDisks ?? []);
      try {
        planTargetImages(spec, localDisks);
      } catch (error) {
        throw invalidArgument((error as Error).message);
      }
      makeRoom(id);
      // Known from here on, before QEMU starts: an AbortIncoming or a retry meanwhile finds it.
      const record = IncomingMigration.begin({
        id,
        spec,
        sourceAccelerator,
        settings,
        token,
        localDisks,
        tokenTtlMs:
          (request.tokenTtlSeconds ? request.tokenTtlSeconds * 1000 : DEFAULT_TOKEN_TTL_MS) +
          diskCopyAllowanceMs(localDisks, request.diskCopyTimeoutPerGibSeconds ?? 0),
        address: options.migrationAddress,
        metrics,
        tombstones,
        supervisor,
        stateRoot: options.stateRoot,
        logger,
      });
      records.set(id, record);
      try {
        await record.ready;
      } catch (error) {
        // A start that failed left nothing behind: forget it, so that a retry starts afresh. An aborted one stays
        // known as ABORTED.
        if (!record.aborted && records.get(id) === record) records.delete(id);
        throw error;
      }
      logger.info(
        { migration: id, guest: spec.name, dataEndpoint: record.dataEndpoint },
        'incoming migration prepared',
      );
      return { dataEndpoint: record.dataEndpoint, diskEndpoint: record.diskEndpoint, state: record.state() };
    }),

    StartMigration: calls.unary('StartMigration', async (request) => {
      const id = checkId(request.migrationId);
      const token = checkToken(request.token);
      let target;
      let diskTarget;
      try {
        target = parseHostPort(request.targetDataEndpoint, 'target_data_endpoint');
        diskTarget =
          request.targetDiskEndpoint === ''
            ? undefined
            : parseHostPort(request.targetDiskEndpoint, 'target_disk_endpoint');
      } catch (error) {
        throw invalidArgument((error as Error).message);
      }
      // A retry while the first call still starts QEMU's migration: wait for it, then answer as for any retry.
      await starting.get(id)?.done.catch(() => undefined);
      const existing = records.get(id);
      if (existing !== undefined) {
        if (existing instanceof OutgoingMigration && existing.sameRequest(target, token, request.guest)) {
          return existing.state();
        }
        throw new RpcError(
          grpc.status.ALREADY_EXISTS,
          `migration ${id} exists on ${nodeName} with other parameters`,
        );
      }
      const ended = tombstones.get(id);
      if (ended !== undefined) {
        // A late retry of a migration that ended here: its end, never a second start.
        const same =
          ended.role === 'source' &&
          ended.state.guest === request.guest &&
          ended.tokenDigest === tokenDigest(token) &&
          ended.dataEndpoint === formatHostPort(target);
        if (same) return ended.state;
        throw new RpcError(
          grpc.status.ALREADY_EXISTS,
          `migration ${id} already ended on ${nodeName} (${ended.state.stage})`,
        );
      }
      if (!supervisor.get(request.guest)) {
        throw new RpcError(
          grpc.status.NOT_FOUND,
          `guest ${JSON.stringify(request.guest)} not found on ${nodeName}`,
        );
      }
      if (starting.has(id)) throw failedPrecondition(`migration ${id} is starting on ${nodeName}; retry`);
      const migrating = [
        ...[...records].filter(([, other]) => other instanceof OutgoingMigration && other.active),
        ...starting,
      ].find(([, other]) => other.guest === request.guest);
      if (migrating !== undefined) {
        throw failedPrecondition(`guest ${request.guest} is already being migrated (${migrating[0]})`);
      }
      const policy = resolveMigrationPolicy(policyOverridesFromWire(request.policy));
      makeRoom(id);
      const started = OutgoingMigration.start({
        id,
        guest: request.guest,
        supervisor,
        stateRoot: options.stateRoot,
        policy,
        target,
        diskTarget,
        token,
        holdInQuiescing: request.holdInQuiescing,
        metrics,
        tombstones,
        logger,
      });
      starting.set(id, { guest: request.guest, done: started });
      let record: OutgoingMigration;
      try {
        record = await started;
      } finally {
        starting.delete(id);
      }
      records.set(id, record);
      logger.info(
        { migration: id, guest: request.guest, target: request.targetDataEndpoint, policy },
        'outgoing migration started',
      );
      return record.state();
    }),

    WatchMigration: (call) => {
      if (!calls.admitStream('WatchMigration', call)) return;
      void (async () => {
        const id = call.request.migrationId;
        let record: MigrationSide | Tombstone;
        try {
          // A StartMigration under way: its migration is followed once QEMU was asked to migrate.
          await starting.get(checkId(id))?.done.catch(() => undefined);
          record = records.get(id) ?? tombstones.get(id) ?? find(id);
        } catch (error) {
          return void call.emit('error', calls.toServiceError('WatchMigration', error));
        }
        if (!(record instanceof OutgoingMigration || record instanceof IncomingMigration)) {
          // Ended: its outcome (a source's) is all the history left.
          const { outcome } = record.state;
          if (outcome !== undefined) call.write({ migrationId: id, atUnixMs: record.atMs, outcome });
          return void call.end();
        }
        const interval = Math.max(
          MIN_PROGRESS_INTERVAL_MS,
          call.request.progressIntervalMs || DEFAULT_PROGRESS_INTERVAL_MS,
        );
        streams.add(call);
        const unsubscribe = record.log.watch(
          (event) => call.write(event),
          () => call.end(),
          interval,
        );
        const finish = (): void => {
          unsubscribe();
          streams.delete(call);
        };
        call.on('cancelled', finish);
        call.on('close', finish);
        call.on('finish', finish);
      })();
    },

    GetMigration: calls.read('GetMigration', (request) => {
      const id = checkId(request.migrationId);
      const record = records.get(id);
      if (record !== undefined) return record.state();
      const start = starting.get(id);
      if (start !== undefined) return startingState(id, start.guest);
      return tombstones.get(id)?.state ?? find(id).state();
    }),

    CancelMigration: calls.unary('CancelMigration', async (request) => {
      const id = checkId(request.migrationId);
      await starting.get(id)?.done.catch(() => undefined);
      const ended = tombstoneOf(id, 'source');
      if (ended !== undefined) {
        if (
          ended.state.outcome?.result === 'RESULT_COMPLETED' &&
          ended.state.stage === 'MIGRATION_STAGE_RELEASED'
        ) {
          throw tooLateToCancel(`migration ${id} completed and its source was released`);
        }
        // It ended without handing the guest over (or gave it back): nothing is left to cancel.
        return ended.state;
      }
      return outgoing(id).cancel(request.reason || 'cancelled by the operator');
    }),

    ContinueMigration: calls.unary('ContinueMigration', (request) =>
      outgoing(request.migrationId).continueSwitchover(),
    ),

    // The hand-over calls show the ownership record's epoch: one older than this node was shown for the guest is
    // refused (FencingStore.admitEpoch; a step a tombstone answers changes nothing). What that adds to the fencing token is argued in docs/architecture.md
    // "The hand-over rule": little, as each hand-over step is single-shot per migration here; it is a second check
    // that does not depend on leader election (an operator without it sends token 0 on every call).
    ResumeTarget: calls.unary('ResumeTarget', async (request) => {
      const requestedAtUs = wallClockUs();
      const ended = tombstoneOf(request.migrationId, 'target');
      if (ended !== undefined) return repeated(ended, ['MIGRATION_STAGE_RESUMED'], 'not resuming');
      const record = incoming(request.migrationId);
      // Checked now; on disk alongside the resume mark, both before `cont` (IncomingMigration.resume).
      const epochDurable = options.fencing.raiseEpoch(record.guest, Number(request.epoch));
      // Awaited below and by the resume; a write that fails before either gets to it is no unhandled rejection.
      epochDurable.catch(() => undefined);
      try {
        return await record.resume(request.recordedOwner, nodeName, requestedAtUs, epochDurable);
      } finally {
        // Whatever the answer, it goes only once the epoch it was given is on disk (or the call fails with it).
        await epochDurable;
      }
    }),

    ReleaseSource: calls.unary('ReleaseSource', async (request) => {
      const ended = tombstoneOf(request.migrationId, 'source');
      if (ended !== undefined) {
        // A source whose QEMU is gone has nothing left to release either.
        return repeated(ended, ['MIGRATION_STAGE_RELEASED', 'MIGRATION_STAGE_SOURCE_LOST'], 'not releasing');
      }
      const record = outgoing(request.migrationId);
      await options.fencing.admitEpoch(record.guest, Number(request.epoch));
      return record.release(
        request.recordedOwner,
        nodeName,
        request.removeLocalDisks,
        request.retainLocalDisks,
      );
    }),

    ResumeSource: calls.unary('ResumeSource', async (request) => {
      const ended = tombstoneOf(request.migrationId, 'source');
      if (ended !== undefined) {
        if (request.recordedOwner !== nodeName) {
          throw failedPrecondition(
            `the ownership record names ${request.recordedOwner || 'nobody'}, not ${nodeName}: not resuming`,
          );
        }
        return repeated(
          ended,
          ['MIGRATION_STAGE_SOURCE_RESUMED', 'MIGRATION_STAGE_SOURCE_LOST'],
          'not resuming the source',
        );
      }
      const record = outgoing(request.migrationId);
      await options.fencing.admitEpoch(record.guest, Number(request.epoch));
      return record.resumeSource(request.recordedOwner, nodeName);
    }),

    ReadClock: calls.read('ReadClock', () => ({ unixUs: wallClockUs() })),

    SteerFrames: calls.unary('SteerFrames', async (request) => {
      const ended = tombstoneOf(request.migrationId, 'target');
      if (ended !== undefined) return { problems: [`the migration ended here (${ended.state.stage})`] };
      return { problems: await incoming(request.migrationId).steerFrames() };
    }),

    AbortIncoming: calls.unary('AbortIncoming', async (request): Promise<MigrationState> => {
      const id = checkId(request.migrationId);
      const ended = tombstoneOf(id, 'target');
      if (ended !== undefined) {
        if (ended.state.stage === 'MIGRATION_STAGE_RESUMED') {
          // guest_lost: its QEMU died after it was told to resume; nothing of the migration is left to abort.
          if (ended.state.guestLost) return ended.state;
          throw failedPrecondition(`target ${ended.state.guest} runs the guest: it cannot be aborted`);
        }
        return {
          ...ended.state,
          stage: 'MIGRATION_STAGE_ABORTED',
          message: `nothing of it is left here (it ended ${ended.state.stage}: ${ended.state.message})`,
        };
      }
      // A migration whose QEMU still starts is marked aborted; the answer comes once the start removed it again.
      if (!records.has(id)) {
        return {
          migrationId: id,
          role: 'MIGRATION_ROLE_TARGET',
          stage: 'MIGRATION_STAGE_ABORTED',
          message: 'unknown here: nothing to abort',
        };
      }
      return incoming(id).abort(request.keepLocalDisks);
    }),
  };

  return {
    handlers,
    async recover() {
      await tombstones.load();
      const context = { supervisor, stateRoot: options.stateRoot, metrics, tombstones, logger };
      for (const file of await readRecordFiles(options.stateRoot)) {
        if (tombstones.get(file.id) !== undefined) {
          // Its step was done; the daemon went away before it removed the record file.
          await removeRecordFile(options.stateRoot, file.id);
          continue;
        }
        const retireAs = (answer: Pick<MigrationState, 'stage' | 'message' | 'guestLost'>): Promise<void> =>
          retire(context, {
            id: file.id,
            role: file.role,
            state: {
              migrationId: file.id,
              role: file.role === 'source' ? 'MIGRATION_ROLE_SOURCE' : 'MIGRATION_ROLE_TARGET',
              guest: file.guest,
              phase: 'MIGRATION_PHASE_UNSPECIFIED',
              ...answer,
            },
            tokenDigest: file.tokenDigest,
            dataEndpoint: file.dataEndpoint,
          });
        const removeImagesOf = async (record: MigrationRecordFile): Promise<void> => {
          if (record.postCopyStartedAtMs !== undefined) {
            // Post-copy: the source cannot run the guest again; these images are one of its complete disks.
            if ((record.createdImages ?? []).length > 0)
              logger.warn(
                { migration: record.id, kept: record.createdImages!.map((image) => image.path) },
                "kept: the migration reached post-copy, so these images are one of the guest's complete disks",
              );
            return;
          }
          const left = await removeCreatedImages(record.createdImages ?? []);
          if (left.length > 0)
            logger.warn(
              { migration: record.id, left },
              'not removed: these names no longer point at the image files this migration created',
            );
        };
        if (file.role === 'source' && file.release !== undefined) {
          // ReleaseSource was admitted before the daemon went away: the release is finished, not forgotten.
          try {
            const record = await OutgoingMigration.recoverRelease(context, file, nodeName);
            if (record !== undefined) records.set(file.id, record);
            continue;
          } catch (error) {
            // Recovered like any other source record below; a retried ReleaseSource finishes the release.
            logger.warn(
              { migration: file.id, reason: (error as Error).message },
              'the release of the source could not be finished after the restart',
            );
          }
        }
        const status = supervisor.get(file.guest);
        if (!status) {
          // Its QEMU is gone with the guest: nothing of it runs or can run here, which the tombstone tells.
          const lost = `the guest's QEMU was gone when the daemon restarted`;
          logger.warn({ migration: file.id, guest: file.guest }, `migration not recovered: ${lost}`);
          const resumed = resumedTargetLost(file, lost);
          // A target that never resumed holds no write of the guest: the images it created for it go.
          if (resumed === undefined && file.role === 'target') await removeImagesOf(file);
          await retireAs(
            resumed ?? {
              stage: file.role === 'source' ? 'MIGRATION_STAGE_SOURCE_LOST' : 'MIGRATION_STAGE_TARGET_FAILED',
              message: lost,
            },
          );
          continue;
        }
        const deadAfterResume =
          status.phase === 'Failed' || status.phase === 'Stopped'
            ? resumedTargetLost(file, `it was ${status.phase} when the daemon restarted: ${status.reason}`)
            : undefined;
        if (deadAfterResume !== undefined) {
          logger.warn({ migration: file.id, guest: file.guest }, deadAfterResume.message);
          await retireAs(deadAfterResume);
          continue;
        }
        try {
          const record =
            file.role === 'source'
              ? await OutgoingMigration.recover(context, file)
              : await IncomingMigration.recover({ ...context, address: options.migrationAddress }, file);
          // Every recovered migration matters; none is refused or evicts another.
          records.set(file.id, record);
        } catch (error) {
          const reason = (error as Error).message;
          logger.warn({ migration: file.id, reason }, 'migration not recovered');
          // A target that may have run the guest must not be forgotten (NOT_FOUND): see resumedTargetLost.
          const resumed = resumedTargetLost(file, `its QEMU could not be followed: ${reason}`);
          if (resumed !== undefined) await retireAs(resumed);
          else {
            // Its QEMU is gone (e.g. the node rebooted during the copy) and the guest never resumed here: the
            // migration cannot end on this node, and the images it created hold no write of the guest.
            const gone = status.phase === 'Failed' || status.phase === 'Stopped';
            if (file.role === 'target' && gone) await removeImagesOf(file);
            await removeRecordFile(options.stateRoot, file.id);
          }
        }
      }
    },
    async close() {
      for (const call of [...streams]) call.end();
      await Promise.all([...records.values()].map((record) => record.close()));
    },
  };
}
